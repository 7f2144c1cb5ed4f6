// The account: who is signed in, whether the e-mail address is verified (with a new link on
// request), links to security (with whether 2FA is on), API keys and, for an operator, the
// console; log out (in every tab).
import { get, post } from "../api.js";
import { errorText, h, notify, replace } from "../dom.js";
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
    emailStatus(),
    h("ul", { class: "links" },
      h("li", {}, h("a", { href: "/account/security" }, "Security: two-factor authentication"), " ", twoFactorStatus()),
      h("li", {}, h("a", { href: "/account/api-keys" }, "API keys")),
      consoleLink()),
    h("button", {
      class: "btn", type: "button", onclick: async () => {
        try { await post("/api/v1/auth/logout"); } catch { /* the session ends here anyway */ }
        session.clear();
        go("/account/login");
      },
    }, "Log out")));
}

/** "Operator console", for an operator the console lets in (an empty item for anyone else). */
function consoleLink() {
  const li = h("li", { hidden: true });
  get("/api/v1/console/me").then(() => {
    replace(li, h("a", { href: "/console", "data-testid": "console-link" }, "Operator console"));
    li.hidden = false;
  }, () => {});
  return li;
}

function twoFactorStatus() {
  const el = h("span", { class: "muted", "data-testid": "account-2fa" });
  get("/api/v1/auth/2fa").then((st) => {
    replace(el, h("span", { class: `badge ${st.enabled ? "on" : "off"}` }, st.enabled ? "On" : "Off"));
  }, () => {});
  return el;
}

function emailStatus() {
  const line = h("p", { "data-testid": "email-status" });
  const msg = h("p", { class: "notice", hidden: true, role: "alert" });
  const box = h("div", {}, line, msg);
  get("/api/v1/auth/email").then((e) => {
    if (e.verified) {
      replace(line, "Email address ", h("strong", {}, e.email), " is verified.");
      return;
    }
    const resend = h("button", {
      class: "btn", type: "button", "data-testid": "resend-verification", onclick: async () => {
        notify(msg, "");
        try {
          await post("/api/v1/auth/verify-email/resend");
          notify(msg, `A new link was mailed to ${e.email}.`, "ok");
        } catch (err) {
          notify(msg, errorText(err));
        }
      },
    }, "Mail a new link");
    replace(line, "Email address ", h("strong", {}, e.email),
      " is not verified yet: follow the link we mailed to it to withdraw and add withdrawal addresses. ", resend);
  }).catch((err) => notify(msg, errorText(err)));
  return box;
}
