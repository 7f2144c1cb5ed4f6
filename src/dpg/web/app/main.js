// The web exchange's entry: the header (connection state, who is signed in) and the router.
import { feed } from "./feed.js";
import { h, replace } from "./dom.js";
import { route, start } from "./router.js";
import * as session from "./session.js";

function showState() {
  const el = document.getElementById("conn");
  el.dataset.state = feed.state;
  el.textContent = { live: "live", stale: "stale — resyncing", connecting: "connecting" }[feed.state];
}

function showWho() {
  const s = session.current();
  replace(document.getElementById("who"), s
    ? h("a", { href: "/account", class: "user" }, s.email || `user ${s.user_id}`)
    : [h("a", { href: "/account/login" }, "Log in"), " ", h("a", { href: "/account/signup", class: "btn small" }, "Sign up")]);
}

feed.addEventListener("state", showState);
window.addEventListener("dpg:session", showWho);
// the session ended (logout or a 401, here or in another tab) or began in another tab: the page
// is drawn again for who is signed in now
let token = session.current()?.token ?? null;
window.addEventListener("dpg:session", (e) => {
  const now = e.detail?.token ?? null;
  if (now === token) return;
  token = now;
  if (now === null || e.remote) route();
});
showState();
showWho();
start();
