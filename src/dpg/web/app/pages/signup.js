// Sign up, then log in at once and offer to turn on 2FA.
import { post } from "../api.js";
import { errorText, h, notify } from "../dom.js";
import { go } from "../router.js";
import * as session from "../session.js";

export function mount(root) {
  const email = h("input", { name: "email", type: "email", autocomplete: "username", required: true });
  const password = h("input", { name: "password", type: "password", autocomplete: "new-password", required: true, minlength: 10 });
  const msg = h("p", { class: "notice", hidden: true, role: "alert" });
  const form = h("form", { class: "panel narrow", "data-testid": "signup" },
    h("h1", {}, "Create your account"),
    h("label", {}, "Email", email),
    h("label", {}, "Password", password),
    msg,
    h("button", { type: "submit", class: "btn primary" }, "Sign up"),
    h("p", { class: "muted" }, "Have an account? ", h("a", { href: "/account/login" }, "Log in")));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    notify(msg, "");
    try {
      await post("/api/v1/auth/signup", { email: email.value, password: password.value });
      const r = await post("/api/v1/auth/login", { email: email.value, password: password.value });
      session.save({ token: r.token, user_id: r.user_id, expires_at: r.expires_at, email: email.value.trim() });
      go("/account/security");
    } catch (err) {
      notify(msg, errorText(err));
    }
  });
  root.append(form);
  email.focus();
}
