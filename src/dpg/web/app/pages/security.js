// Security: whether two-factor authentication is on; its set-up with a QR code of the otpauth URI
// and the secret (with a copy button), confirmed with a code; turning it off and new recovery
// codes, each with a code from the app. Recovery codes are shown once, with copy and download,
// and the page moves on only after "I have saved them".
import qrcode from "qrcode-generator";
import { get, post } from "../api.js";
import { copyButton, errorText, h, notify, replace } from "../dom.js";
import * as session from "../session.js";
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

/** The prompt to turn 2FA on, where it is off: `what` says what needs only the password then. */
export function twoFactorPrompt(what) {
  return h("p", { class: "notice warn", "data-testid": "twofa-prompt" },
    "Two-factor authentication is off: ", what, " need only your password. ",
    h("a", { href: "/account/security" }, "Turn on 2FA"), " to protect your funds.");
}

function codeInput(name) {
  return h("input", { name, inputmode: "numeric", autocomplete: "one-time-code", maxlength: 8, required: true,
    pattern: "[0-9 ]{6,8}", title: "the 6-digit code from your authenticator app" });
}

export function mount(root) {
  if (!needSession(root)) return;
  let gone = false;
  const status = h("p", { class: "status-line", "data-testid": "totp-status" });
  const body = h("div");
  const msg = h("p", { class: "notice", hidden: true, role: "alert" });
  root.append(h("section", { class: "panel narrow", "data-testid": "security" },
    h("h1", {}, "Security"),
    h("h2", {}, "Two-factor authentication"), status, body, msg));

  async function load(note) {
    notify(msg, "");
    try {
      const st = await get("/api/v1/auth/2fa");
      if (gone) return;
      if (st.enabled) showOn(st); else showOff();
      if (note) notify(msg, note, "ok");
    } catch (err) {
      notify(msg, errorText(err));
    }
  }

  function setStatus(on) {
    status.dataset.enabled = String(on);
    replace(status, h("span", { class: `badge ${on ? "on" : "off"}` }, on ? "On" : "Off"), " ",
      on ? "Log-ins, new API keys, withdrawals and withdrawal addresses need a code from your authenticator app."
        : "Anyone with your password can log in and withdraw to an allow-listed address.");
  }

  function showOff() {
    setStatus(false);
    const start = h("button", { class: "btn primary", type: "button", "data-testid": "totp-start" }, "Set up 2FA");
    start.addEventListener("click", async () => {
      notify(msg, "");
      try {
        enrol(await post("/api/v1/auth/2fa/setup"));
      } catch (err) {
        if (err.code === "TOTP_ALREADY_ENABLED") load(); else notify(msg, errorText(err));
      }
    });
    replace(body, start);
  }

  function showOn(st) {
    setStatus(true);
    const renewCode = codeInput("renew-code");
    const renew = h("form", { class: "stack", "data-testid": "totp-renew" },
      h("h3", {}, "Recovery codes"),
      h("p", { class: "muted", "data-testid": "codes-left" },
        `${st.recovery_codes_left} of 10 unused. New codes replace them all: the old ones stop working.`),
      h("label", {}, "Code from the app", renewCode),
      h("button", { type: "submit", class: "btn" }, "Make new recovery codes"));
    renew.addEventListener("submit", async (e) => {
      e.preventDefault();
      notify(msg, "");
      try {
        const r = await post("/api/v1/auth/2fa/recovery-codes", { code: renewCode.value.trim() });
        recovery(r.recovery_codes, "New recovery codes: the old ones no longer work.");
      } catch (err) {
        notify(msg, errorText(err));
      }
    });
    const offCode = codeInput("disable-code");
    const off = h("form", { class: "stack", "data-testid": "totp-disable" },
      h("h3", {}, "Turn off 2FA"),
      h("p", { class: "muted" }, "Your password alone will then log in and withdraw. We mail you a notice."),
      h("label", {}, "Code from the app", offCode),
      h("button", { type: "submit", class: "btn danger" }, "Turn off 2FA"));
    off.addEventListener("submit", async (e) => {
      e.preventDefault();
      notify(msg, "");
      try {
        await post("/api/v1/auth/2fa/disable", { code: offCode.value.trim() });
        load("2FA is off.");
      } catch (err) {
        notify(msg, errorText(err));
      }
    });
    replace(body, renew, off);
  }

  function enrol({ secret, otpauth_uri: uri }) {
    const code = h("input", { name: "code", inputmode: "numeric", autocomplete: "one-time-code", maxlength: 8, required: true });
    const form = h("form", { class: "stack" },
      h("p", {}, "Scan this code with your authenticator app, or enter the secret by hand."),
      h("div", { class: "qrbox" }, qrSvg(uri)),
      h("p", { class: "secret-line" }, "Secret: ", h("code", { "data-testid": "totp-secret" }, secret), " ",
        copyButton(secret, "2FA secret")),
      h("label", {}, "Code from the app", code),
      h("button", { type: "submit", class: "btn primary" }, "Turn on 2FA"));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      notify(msg, "");
      try {
        const r = await post("/api/v1/auth/2fa/enable", { code: code.value.trim() });
        setStatus(true);
        recovery(r.recovery_codes, h("span", { class: "ok", "data-testid": "totp-on" }, "2FA is on."));
      } catch (err) {
        notify(msg, errorText(err));
      }
    });
    replace(body, form);
    code.focus();
  }

  // the recovery codes, shown once: copy, download, then "I have saved them" before moving on
  function recovery(codes, lead) {
    const who = session.current()?.email || "your account";
    const text = `DPG recovery codes (${who}), made ${new Date().toISOString().slice(0, 10)}.\n`
      + "Each logs you in once in place of a code from your authenticator app.\n\n"
      + `${codes.join("\n")}\n`;
    const download = h("button", { type: "button", class: "btn small", "data-testid": "codes-download" }, "Download");
    download.addEventListener("click", () => {
      const url = URL.createObjectURL(new Blob([text], { type: "text/plain" }));
      // clicked while detached: the router, which listens on the document for link clicks, never sees it
      h("a", { href: url, download: "dpg-recovery-codes.txt" }).click();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    });
    const saved = h("input", { type: "checkbox", name: "codes-saved", "data-testid": "codes-saved" });
    const done = h("button", { type: "button", class: "btn primary", disabled: true, "data-testid": "codes-done" }, "Continue");
    saved.addEventListener("change", () => { done.disabled = !saved.checked; });
    done.addEventListener("click", () => load());
    replace(body,
      h("p", {}, lead),
      h("p", {}, "Recovery codes: each logs you in once if you lose the app. Keep them somewhere safe, "
        + "apart from your password: they are shown only now."),
      h("ol", { class: "codes", "data-testid": "recovery-codes" }, codes.map((c) => h("li", {}, h("code", {}, c)))),
      h("div", { class: "actions start" }, copyButton(codes.join("\n"), "recovery codes"), download),
      h("label", { class: "check" }, saved, "I have saved my recovery codes"),
      done);
  }

  load();
  return () => { gone = true; };
}
