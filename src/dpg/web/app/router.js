// The pages and their paths. A page module exports mount(root, params) and returns a function that
// unmounts it (unsubscribing its feeds). To add a page: add a route here and a nav link in
// index.html (data-nav names the route's nav entry); the server already answers the shell for
// the path prefixes in dpg/api/web.py PAGES. A route with `visitor` shows that page instead to
// someone not logged in ("/": the home page for a visitor, the trade page for a user).
import * as session from "./session.js";

const ROUTES = [
  { path: /^\/$/, nav: "trade", load: () => import("./pages/trade.js"),
    visitor: { nav: "home", load: () => import("./pages/home.js") } },
  { path: /^\/trade$/, nav: "trade", load: () => import("./pages/trade.js") },
  { path: /^\/trade\/(?<market>[A-Za-z0-9]+-[A-Za-z0-9]+)$/, nav: "trade", load: () => import("./pages/trade.js") },
  { path: /^\/futures$/, nav: "futures", load: () => import("./pages/futures.js") },
  { path: /^\/futures\/(?<market>[A-Za-z0-9]+-PERP)$/i, nav: "futures", load: () => import("./pages/futures.js") },
  { path: /^\/account\/login$/, nav: "account", load: () => import("./pages/login.js") },
  { path: /^\/account\/signup$/, nav: "account", load: () => import("./pages/signup.js") },
  { path: /^\/account\/security$/, nav: "account", load: () => import("./pages/security.js") },
  { path: /^\/account\/api-keys$/, nav: "account", load: () => import("./pages/apikeys.js") },
  { path: /^\/account\/forgot$/, nav: "account", params: { kind: "forgot" }, load: () => import("./pages/email.js") },
  { path: /^\/verify-email$/, nav: "account", params: { kind: "verify" }, load: () => import("./pages/email.js") },
  { path: /^\/reset-password$/, nav: "account", params: { kind: "reset" }, load: () => import("./pages/email.js") },
  { path: /^\/account$/, nav: "account", load: () => import("./pages/account.js") },
  { path: /^\/wallet$/, nav: "wallet", load: () => import("./pages/wallet.js") },
  { path: /^\/proof$/, nav: "proof", load: () => import("./pages/proof.js") },
  { path: /^\/proof\/exit$/, nav: "proof", load: () => import("./pages/exit.js") },
  { path: /^\/console$/, nav: "console", load: () => import("./pages/console.js") },
  { path: /^\/governance$/, nav: "governance", load: () => import("./pages/governance.js") },
];

let unmount = null;
let seq = 0;

// Each navigation mounts its page into a view of its own. A page's mount may wait (on the network)
// and finish after the user has moved on: its content then lands in a view that is no longer in
// the document, and it is unmounted at once, never stacked over the page shown now.
export async function route() {
  const path = location.pathname.replace(/\/+$/, "") || "/";
  let r = ROUTES.find((x) => x.path.test(path));
  if (r?.visitor && !session.current()) r = { ...r, ...r.visitor };
  const root = document.getElementById("page");
  for (const a of document.querySelectorAll("#nav a")) {
    const here = !!r && a.dataset.nav === r.nav;
    a.classList.toggle("active", here);
    if (here) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  const mine = ++seq;
  if (unmount) { const off = unmount; unmount = null; off(); }
  const view = document.createElement("div");
  view.className = "view";
  root.replaceChildren(view);
  if (!r) {
    view.textContent = "Page not found.";
    return;
  }
  document.body.dataset.page = `${r.nav}${path === "/" ? "" : path.replace(/\//g, "-")}`;
  const mod = await r.load();
  if (mine !== seq) return;
  const params = { ...(r.params || {}), ...(r.path.exec(path).groups || {}) };
  const off = (await mod.mount(view, params)) || null;
  if (mine !== seq) { // moved on while it mounted: its view is gone already
    if (off) off();
    return;
  }
  unmount = off;
}

export function go(path) {
  if (path !== location.pathname) history.pushState(null, "", path);
  route();
}

export function start() {
  window.addEventListener("popstate", route);
  document.addEventListener("click", (e) => {
    const a = e.target.closest?.("a[href]");
    // a link that opens elsewhere or downloads (a proof file) is the browser's
    if (!a || a.target || a.hasAttribute("download") || e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
    const url = new URL(a.href, location.href);
    if (url.origin !== location.origin || url.pathname.startsWith("/static/") || url.pathname.startsWith("/api/")) return;
    e.preventDefault();
    go(url.pathname);
  });
  route();
}
