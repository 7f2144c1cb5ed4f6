// The pages of the links the exchange mails: verify the e-mail address (/verify-email?token=…),
// ask for a password reset (/account/forgot) and set the new password (/reset-password?token=…).
// The token is taken out of the address bar as soon as the page has read it.
import { post } from "../api.js";
import { errorText, h, notify } from "../dom.js";
import * as session from "../session.js";

function takeToken() {
  const token = new URLSearchParams(location.search).get("token") || "";
  if (location.search) history.replaceState(null, "", location.pathname);
  return token;
}

const AGAIN = { TOKEN_EXPIRED: true, TOKEN_USED: true, TOKEN_INVALID: true };

export async function mount(root, params) {
  if (params.kind === "verify") return verify(root);
  if (params.kind === "reset") return reset(root);
  return forgot(root);
}

async function verify(root) {
  const msg = h("p", { class: "notice info", role: "status" }, "Verifying your email address…");
  const panel = h("section", { class: "panel narrow", "data-testid": "verify-email" }, h("h1", {}, "Email address"), msg);
  root.append(panel);
  const token = takeToken();
  if (!token) {
    notify(msg, "This page is opened by the link in the email we sent you.");
    return;
  }
  try {
    await post("/api/v1/auth/verify-email", { token });
    msg.remove();
    panel.append(h("p", { class: "notice ok", "data-testid": "email-verified" },
      "Your email address is verified: withdrawals and withdrawal addresses are open to your account."),
    h("p", {}, h("a", { href: session.current() ? "/wallet" : "/account/login" },
      session.current() ? "Go to the wallet" : "Log in")));
  } catch (err) {
    notify(msg, errorText(err));
    if (AGAIN[err.code]) {
      panel.append(h("p", { class: "muted" }, "Log in and ask for a new link on the ",
        h("a", { href: "/account" }, "account page"), "."));
    }
  }
}

function forgot(root) {
  const email = h("input", { name: "email", type: "email", autocomplete: "username", required: true });
  const msg = h("p", { class: "notice", hidden: true, role: "alert" });
  const form = h("form", { class: "panel narrow", "data-testid": "forgot" },
    h("h1", {}, "Forgot your password?"),
    h("p", { class: "muted" }, "We mail a link to set a new one. It works once, within an hour."),
    h("label", {}, "Email", email),
    msg,
    h("button", { type: "submit", class: "btn primary" }, "Mail me a link"),
    h("p", { class: "muted" }, h("a", { href: "/account/login" }, "Back to log in")));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    notify(msg, "");
    try {
      const r = await post("/api/v1/auth/password/forgot", { email: email.value });
      notify(msg, r.message, "ok");
    } catch (err) {
      notify(msg, errorText(err));
    }
  });
  root.append(form);
  email.focus();
}

function reset(root) {
  const token = takeToken();
  const password = h("input", { name: "password", type: "password", autocomplete: "new-password", required: true, minlength: 10 });
  const again = h("input", { name: "password2", type: "password", autocomplete: "new-password", required: true, minlength: 10 });
  const msg = h("p", { class: "notice", hidden: true, role: "alert" });
  const button = h("button", { type: "submit", class: "btn primary" }, "Set the new password");
  const form = h("form", { class: "panel narrow", "data-testid": "reset" },
    h("h1", {}, "Choose a new password"),
    h("p", { class: "muted" }, "Every session of your account is signed out when it is set."),
    h("label", {}, "New password", password),
    h("label", {}, "The same again", again),
    msg, button);
  if (!token) {
    notify(msg, "This page is opened by the link in the email we sent you.");
    button.disabled = true;
  }
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    notify(msg, "");
    if (password.value !== again.value) {
      notify(msg, "The two passwords differ.");
      return;
    }
    try {
      await post("/api/v1/auth/password/reset", { token, password: password.value });
      session.clear();
      form.replaceChildren(h("h1", {}, "Password set"),
        h("p", { class: "notice ok", "data-testid": "password-set" }, "Your new password is set; every session was signed out."),
        h("p", {}, h("a", { href: "/account/login" }, "Log in")));
    } catch (err) {
      notify(msg, errorText(err));
      if (AGAIN[err.code]) {
        msg.append(" ", h("a", { href: "/account/forgot" }, "Ask for a new link"));
      }
    }
  });
  root.append(form);
  password.focus();
}
