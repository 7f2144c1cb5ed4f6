// Two-factor authentication: set-up with a QR code of the otpauth URI, confirmation with a code,
// and the recovery codes shown once.
import qrcode from "qrcode-generator";
import { post } from "../api.js";
import { errorText, h, notify, replace } from "../dom.js";
import { needSession } from "./account.js";

export function qrSvg(text) {
  const qr = qrcode(0, "M");
  qr.addData(text);
  qr.make();
  const n = qr.getModuleCount();
  const q = 4; // quiet zone
  let d = "";
  for (let y = 0; y < n; y++) for (let x = 0; x < n; x++) if (qr.isDark(y, x)) d += `M${x + q} ${y + q}h1v1h-1z`;
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${n + 2 * q} ${n + 2 * q}`);
  svg.setAttribute("class", "qr");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "QR code");
  svg.setAttribute("shape-rendering", "crispEdges");
  const bg = document.createElementNS(svg.namespaceURI, "rect");
  bg.setAttribute("width", "100%");
  bg.setAttribute("height", "100%");
  bg.setAttribute("fill", "#fff");
  const path = document.createElementNS(svg.namespaceURI, "path");
  path.setAttribute("d", d);
  path.setAttribute("fill", "#000");
  svg.append(bg, path);
  return svg;
}

export function mount(root) {
  if (!needSession(root)) return;
  const body = h("div");
  const msg = h("p", { class: "notice", hidden: true, role: "alert" });
  const start = h("button", { class: "btn primary", type: "button", "data-testid": "totp-start" }, "Set up 2FA");
  root.append(h("section", { class: "panel narrow", "data-testid": "security" },
    h("h1", {}, "Two-factor authentication"),
    h("p", { class: "muted" }, "Log-ins and new API keys then need a code from an authenticator app."),
    body, msg));
  replace(body, start);
  start.addEventListener("click", async () => {
    notify(msg, "");
    try {
      const r = await post("/api/v1/auth/2fa/setup");
      enrol(r);
    } catch (err) {
      if (err.code === "TOTP_ALREADY_ENABLED") replace(body, h("p", { class: "ok", "data-testid": "totp-on" }, "2FA is on."));
      else notify(msg, errorText(err));
    }
  });

  function enrol({ secret, otpauth_uri: uri }) {
    const code = h("input", { name: "code", inputmode: "numeric", autocomplete: "one-time-code", maxlength: 8, required: true });
    const form = h("form", { class: "stack" },
      h("p", {}, "Scan this code with your authenticator app, or enter the secret by hand."),
      h("div", { class: "qrbox" }, qrSvg(uri)),
      h("p", {}, "Secret: ", h("code", { "data-testid": "totp-secret" }, secret)),
      h("label", {}, "Code from the app", code),
      h("button", { type: "submit", class: "btn primary" }, "Turn on 2FA"));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      notify(msg, "");
      try {
        const r = await post("/api/v1/auth/2fa/enable", { code: code.value.trim() });
        replace(body,
          h("p", { class: "ok", "data-testid": "totp-on" }, "2FA is on."),
          h("p", {}, "Recovery codes: each logs you in once if you lose the app. Keep them safe; they are shown only now."),
          h("ol", { class: "codes", "data-testid": "recovery-codes" }, r.recovery_codes.map((c) => h("li", {}, h("code", {}, c)))));
      } catch (err) {
        notify(msg, errorText(err));
      }
    });
    replace(body, form);
    code.focus();
  }
}
