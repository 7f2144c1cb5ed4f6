// Log in: email and password, then the 2FA code when the account asks for one. On the demo
// exchange (dpg up --demo) the page names the demo logins, and a click fills one in.
import { get, post } from "../api.js";
import { errorText, h, notify } from "../dom.js";
import { go } from "../router.js";
import * as session from "../session.js";

let demoInfo = null;

/** The demo's logins (GET /api/v1/demo, asked once), or null on an exchange that is not the demo. */
export function demoLogins() {
  if (!demoInfo) {
    demoInfo = get("/api/v1/demo").then((d) => (d?.demo ? d : null));
    demoInfo.catch(() => { demoInfo = null; });
  }
  return demoInfo.catch(() => null);
}

/** A notice naming the demo logins (null when this is not the demo); `use(email, password)`, when
 * given, makes each login a button that fills the form in. */
export async function demoNotice(use) {
  const d = await demoLogins();
  if (!d) return null;
  const login = (email) => (use
    ? h("button", { type: "button", class: "btn small", onclick: () => use(email, d.password) }, email)
    : h("code", {}, email));
  return h("div", { class: "notice info demo", "data-testid": "demo-logins" },
    h("strong", {}, "This is the demo exchange. "),
    "Log in as ", d.users.map((u, i) => [i ? " or " : "", login(u)]), " with the password ", h("code", {}, d.password),
    `: play money, deposited on the exchange's own development chains. The order books are kept moving by `,
    h("code", {}, d.market_maker), " and ", h("code", {}, d.taker), ".");
}

export function mount(root) {
  const email = h("input", { name: "email", type: "email", autocomplete: "username", required: true });
  const password = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true });
  const totp = h("input", { name: "totp", inputmode: "numeric", autocomplete: "one-time-code", maxlength: 16 });
  const totpRow = h("label", { hidden: true }, "Authentication code (or a recovery code)", totp);
  const msg = h("p", { class: "notice", hidden: true, role: "alert" });
  const form = h("form", { class: "panel narrow", "data-testid": "login" },
    h("h1", {}, "Log in"),
    h("label", {}, "Email", email),
    h("label", {}, "Password", password),
    totpRow, msg,
    h("button", { type: "submit", class: "btn primary" }, "Log in"),
    h("p", { class: "muted" }, "No account? ", h("a", { href: "/account/signup" }, "Sign up"),
      " · ", h("a", { href: "/account/forgot", "data-testid": "forgot-link" }, "Forgot password?")));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    notify(msg, "");
    try {
      const r = await post("/api/v1/auth/login", { email: email.value, password: password.value, totp: totp.value || null });
      session.save({ token: r.token, user_id: r.user_id, expires_at: r.expires_at, email: email.value.trim() });
      go("/");
    } catch (err) {
      if (err.code === "TOTP_REQUIRED") {
        totpRow.hidden = false;
        totp.focus();
        notify(msg, "Enter the code from your authenticator app.", "info");
      } else {
        notify(msg, errorText(err));
      }
    }
  });
  root.append(form);
  email.focus();
  demoNotice((e, p) => {
    email.value = e;
    password.value = p;
    form.querySelector("button[type=submit]").focus();
  }).then((el) => { if (el) form.querySelector("h1").after(el); });
}
