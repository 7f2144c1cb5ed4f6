// API keys: create one with permissions and an IP allow-list (its secret shown once), list, revoke.
import { del, get, post } from "../api.js";
import { dateTime, errorText, h, notify, replace, table } from "../dom.js";
import { needSession } from "./account.js";

export function mount(root) {
  if (!needSession(root)) return;
  const name = h("input", { name: "name", required: true, maxlength: 64, placeholder: "my bot" });
  const perms = ["read", "trade", "withdraw"].map((p) =>
    h("label", { class: "check" }, h("input", { type: "checkbox", name: "perm", value: p, checked: p === "read" }), p));
  const ips = h("textarea", { name: "ip_allow", rows: 2, placeholder: "203.0.113.7, 198.51.100.0/24 (empty: any address)" });
  const totp = h("input", { name: "totp", inputmode: "numeric", autocomplete: "one-time-code", maxlength: 16, placeholder: "if 2FA is on" });
  const msg = h("p", { class: "notice", hidden: true, role: "alert" });
  const created = h("div");
  const list = h("div", { "data-testid": "key-list" });
  const form = h("form", { class: "stack", "data-testid": "key-form" },
    h("label", {}, "Name", name),
    h("fieldset", { class: "row" }, h("legend", {}, "Permissions"), perms),
    h("label", {}, "IP allow-list", ips),
    h("label", {}, "2FA code", totp),
    h("button", { type: "submit", class: "btn primary" }, "Create API key"));
  root.append(h("section", { class: "panel", "data-testid": "api-keys" },
    h("h1", {}, "API keys"), form, msg, created, h("h2", {}, "Your keys"), list));

  async function refresh() {
    try {
      const keys = await get("/api/v1/api-keys");
      replace(list, table(["Name", "Key", "Permissions", "IP allow-list", "Created", "Status", ""], keys.map((k) =>
        h("tr", { dataset: { key: k.key } },
          h("td", {}, k.name), h("td", {}, h("code", {}, k.key)), h("td", {}, k.permissions.join(", ")),
          h("td", {}, k.ip_allow.join(", ") || "any"), h("td", {}, dateTime(Date.parse(k.created_at))),
          h("td", {}, k.revoked ? "revoked" : "active"),
          h("td", {}, k.revoked ? "" : h("button", { class: "btn small danger", type: "button", onclick: () => revoke(k.key) }, "Revoke")))),
      "No API keys"));
    } catch (err) {
      notify(msg, errorText(err));
    }
  }

  async function revoke(key) {
    try {
      await del(`/api/v1/api-keys/${encodeURIComponent(key)}`);
      await refresh();
    } catch (err) {
      notify(msg, errorText(err));
    }
  }

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    notify(msg, "");
    const permissions = perms.map((l) => l.firstChild).filter((c) => c.checked).map((c) => c.value);
    const ip_allow = ips.value.split(/[\s,]+/).filter(Boolean);
    try {
      const r = await post("/api/v1/api-keys", { name: name.value, permissions, ip_allow, totp: totp.value || null });
      replace(created, h("div", { class: "secret", "data-testid": "key-created" },
        h("p", {}, h("strong", {}, "Copy the secret now: it is not shown again.")),
        h("p", {}, "Key: ", h("code", { "data-testid": "key-id" }, r.key)),
        h("p", {}, "Secret: ", h("code", { "data-testid": "key-secret" }, r.secret))));
      form.reset();
      await refresh();
    } catch (err) {
      notify(msg, errorText(err));
    }
  });
  refresh();
}
