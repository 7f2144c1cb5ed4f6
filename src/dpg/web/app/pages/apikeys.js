// API keys: create one with permissions and an IP allow-list (its secret shown once, with copy
// buttons), list, revoke. A key that can withdraw is confirmed first (its permissions and IP list
// shown), with a warning when it has no IP list and a prompt to turn 2FA on where it is off;
// revoking is confirmed too. On a phone the list is one card per key.
import { del, get, post } from "../api.js";
import { confirmStep } from "../confirm.js";
import { copyButton, dateTime, errorText, h, notify, replace, table } from "../dom.js";
import { needSession } from "./account.js";
import { twoFactorPrompt } from "./security.js";

const NO_IP_LIST = "Without an IP allow-list this key can withdraw from any address: whoever obtains it can "
  + "move your funds to your allow-listed addresses. List the addresses your program runs from.";

export function mount(root) {
  if (!needSession(root)) return;
  let twoFactor = null;
  const name = h("input", { name: "name", required: true, maxlength: 64, placeholder: "my bot" });
  const perms = ["read", "trade", "withdraw"].map((p) =>
    h("label", { class: "check" }, h("input", { type: "checkbox", name: "perm", value: p, checked: p === "read" }), p));
  const ips = h("textarea", { name: "ip_allow", rows: 2, placeholder: "203.0.113.7, 198.51.100.0/24 (empty: any address)" });
  const totp = h("input", { name: "totp", inputmode: "numeric", autocomplete: "one-time-code", maxlength: 16 });
  const totpRow = h("label", { hidden: true }, "2FA code", totp);
  const warnings = h("div", { "aria-live": "polite" });
  const msg = h("p", { class: "notice", hidden: true, role: "alert" });
  const created = h("div");
  const list = h("div", { class: "cards", "data-testid": "key-list" });
  const form = h("form", { class: "stack", "data-testid": "key-form" },
    h("label", {}, "Name", name),
    h("fieldset", { class: "row" }, h("legend", {}, "Permissions"), perms),
    h("label", {}, "IP allow-list", ips),
    warnings, totpRow,
    h("button", { type: "submit", class: "btn primary" }, "Create API key"));
  root.append(h("section", { class: "panel keys", "data-testid": "api-keys" },
    h("h1", {}, "API keys"), form, msg, created, h("h2", {}, "Your keys"), list));

  const chosen = () => perms.map((l) => l.firstChild).filter((c) => c.checked).map((c) => c.value);
  const ipList = () => ips.value.split(/[\s,]+/).filter(Boolean);
  function warn() {
    const withdraw = chosen().includes("withdraw");
    replace(warnings,
      withdraw && twoFactor === false ? twoFactorPrompt("a key that can withdraw and your account's other withdrawals") : null,
      withdraw && !ipList().length ? h("p", { class: "notice warn", "data-testid": "withdraw-key-warning" }, NO_IP_LIST) : null);
  }
  form.addEventListener("input", warn);
  form.addEventListener("change", warn);
  get("/api/v1/auth/2fa").then((st) => {
    twoFactor = st.enabled;
    totpRow.hidden = !twoFactor;
    totp.required = twoFactor;
    warn();
  }, (err) => notify(msg, errorText(err)));

  async function refresh() {
    try {
      const keys = await get("/api/v1/api-keys");
      replace(list, table(["Name", "Key", "Permissions", "IP allow-list", "Created", "Status", ""], keys.map((k) =>
        h("tr", { dataset: { key: k.key } },
          h("td", {}, k.name), h("td", {}, h("code", {}, k.key)), h("td", {}, k.permissions.join(", ")),
          h("td", {}, k.ip_allow.join(", ") || (k.permissions.includes("withdraw") && !k.revoked
            ? h("span", { class: "bad", title: NO_IP_LIST }, "any address") : "any")),
          h("td", {}, dateTime(Date.parse(k.created_at))),
          h("td", {}, k.revoked ? "revoked" : "active"),
          h("td", { class: "act" }, k.revoked ? "" : h("button", { class: "btn small danger", type: "button",
            "aria-label": `Revoke ${k.name} (${k.key})`, onclick: () => revoke(k) }, "Revoke")))),
      "No API keys"));
    } catch (err) {
      notify(msg, errorText(err));
    }
  }

  async function revoke(k) {
    const ok = await confirmStep({
      kind: "revoke-key", title: "Revoke this API key?", confirm: "Revoke", danger: true,
      intro: "Every program using it is refused from now on. A revoked key cannot be used again.",
      facts: [["Name", k.name], ["Key", h("code", {}, k.key)], ["Permissions", k.permissions.join(", ")]],
    });
    if (!ok) return;
    try {
      await del(`/api/v1/api-keys/${encodeURIComponent(k.key)}`);
      await refresh();
    } catch (err) {
      notify(msg, errorText(err));
    }
  }

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    notify(msg, "");
    const permissions = chosen();
    const ip_allow = ipList();
    if (!permissions.length) return notify(msg, "Choose at least one permission.");
    if (permissions.includes("withdraw")) {
      const ok = await confirmStep({
        kind: "withdraw-key", title: "Create a key that can withdraw?", confirm: "Create the key",
        intro: "This key can request withdrawals to the addresses on your allow-list.",
        facts: [["Name", name.value.trim()], ["Permissions", permissions.join(", "), "confirm-permissions"],
          ["IP allow-list", ip_allow.length ? ip_allow.join(", ") : h("span", { class: "bad" }, "any address"),
            "confirm-ips"]],
        warnings: [ip_allow.length ? null : NO_IP_LIST,
          twoFactor === false ? "Two-factor authentication is off on your account." : null],
      });
      if (!ok) return;
    }
    try {
      const r = await post("/api/v1/api-keys", { name: name.value, permissions, ip_allow, totp: totp.value || null });
      replace(created, h("div", { class: "secret", "data-testid": "key-created" },
        h("p", {}, h("strong", {}, "Copy the secret now: it is not shown again.")),
        h("p", {}, "Key: ", h("code", { "data-testid": "key-id" }, r.key), " ", copyButton(r.key, "API key")),
        h("p", {}, "Secret: ", h("code", { "data-testid": "key-secret" }, r.secret), " ", copyButton(r.secret, "API secret"))));
      form.reset();
      warn();
      await refresh();
    } catch (err) {
      notify(msg, errorText(err));
    }
  });
  refresh();
}
