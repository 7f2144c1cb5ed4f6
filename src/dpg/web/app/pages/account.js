// The account: who is signed in, links to security (2FA) and API keys, log out.
import { post } from "../api.js";
import { h } from "../dom.js";
import { go } from "../router.js";
import * as session from "../session.js";

export function needSession(root) {
  const s = session.current();
  if (s) return s;
  root.append(h("section", { class: "panel narrow" }, h("h1", {}, "Account"),
    h("p", {}, h("a", { href: "/account/login" }, "Log in"), " or ", h("a", { href: "/account/signup" }, "sign up"),
      " to trade, manage 2FA and API keys.")));
  return null;
}

export function mount(root) {
  const s = needSession(root);
  if (!s) return;
  root.append(h("section", { class: "panel narrow", "data-testid": "account" },
    h("h1", {}, "Account"),
    h("p", {}, "Signed in as ", h("strong", {}, s.email || `user ${s.user_id}`), ` (user id ${s.user_id}).`),
    h("ul", { class: "links" },
      h("li", {}, h("a", { href: "/account/security" }, "Security: two-factor authentication")),
      h("li", {}, h("a", { href: "/account/api-keys" }, "API keys"))),
    h("button", {
      class: "btn", type: "button", onclick: async () => {
        try { await post("/api/v1/auth/logout"); } catch { /* the session ends here anyway */ }
        session.clear();
        go("/account/login");
      },
    }, "Log out")));
}
