// The operator's console (/console): the exchange's health (the journal's head, the projection
// follower's lag, each chain's head and the deposit watcher's lag, the last proof-of-reserves
// epochs), withdrawals waiting for a person's signature, surveillance alerts with their evidence,
// the audit log with whether its hash chain verifies, and the backups with their verification.
// Only for operators with 2FA on: the API answers 403 otherwise and the page says why.
// Everything is read again every 15 s while the page is open, and on "Refresh".
import { get } from "../api.js";
import { dateTime, errorText, h, replace, table } from "../dom.js";
import { needSession } from "./account.js";
import { short } from "./wallet.js";

const POLL_MS = 15000;

const CLOSED = {
  OPERATOR_ONLY: "The console is for operators (the role is granted with dpg user grant-operator).",
  TWO_FACTOR_REQUIRED: "Operators must turn two-factor authentication on to use the console.",
};

function when(iso) {
  return iso ? dateTime(Date.parse(iso)) : "—";
}

function num(v) {
  return v === null || v === undefined ? "—" : Number(v).toLocaleString("en-US");
}

function section(title, id, ...body) {
  return h("section", { class: "panel console-part", "data-testid": id }, h("h2", {}, title), ...body);
}

function healthPart(x) {
  const chains = table(["Chain", "Head", "Watched", "Lag (blocks)", "Watched at"],
    x.chains.map((c) => h("tr", { dataset: { chain: c.chain } },
      h("td", {}, c.chain), h("td", { class: "num" }, c.head === null ? `unreachable (${c.error})` : num(c.head)),
      h("td", { class: "num" }, num(c.watched)), h("td", { class: "num" }, num(c.lag)),
      h("td", {}, when(c.watched_at)))), "No custody chain");
  const p = x.por;
  return section("Health", "console-health",
    x.ok ? null : h("p", { class: "notice", role: "alert" }, x.reason),
    h("dl", { class: "facts" },
      h("dt", {}, "Journal"), h("dd", { "data-testid": "journal-seq" }, `seq ${num(x.journal.seq)}`,
        h("span", { class: "muted" }, ` (engine at ${num(x.journal.engine_seq)})`)),
      h("dt", {}, "Projection follower"), h("dd", { "data-testid": "follower" },
        `seq ${num(x.follower.seq)}, ${num(x.follower.lag)} behind`),
      h("dt", {}, "Proof of reserves"), h("dd", { "data-testid": "por" },
        p.last_marked ? `epoch ${p.last_marked} marked` : "no epoch marked yet",
        p.last_published ? `; epoch ${p.last_published} published ${when(p.published_at)} (${p.assets} assets)`
          : "; none published yet")),
    h("div", { class: "cards" }, chains));
}

function withdrawalsPart(ws) {
  return section("Withdrawals awaiting signatures", "console-withdrawals",
    h("p", { class: "muted" }, "A person signs with ", h("code", {}, "dpg signer sign ID"), " after ",
      h("code", {}, "dpg signer show ID"), "."),
    h("div", { class: "cards" }, table(["Id", "Account", "Amount", "Chain", "To", "Signatures", "Reviews"],
      ws.map((w) => h("tr", { dataset: { id: w.id } },
        h("td", { title: w.id }, h("code", {}, short(w.id))), h("td", {}, w.account),
        h("td", { class: "num" }, `${w.amount} ${w.asset}`), h("td", {}, w.chain),
        h("td", { title: w.to }, h("code", {}, short(w.to))),
        h("td", {}, `${w.signatures.length}/3`, w.signatures.length
          ? h("span", { class: "muted" }, ` (${w.signatures.map((s) => s.kind).join(", ")})`) : null),
        h("td", {}, w.reviews.map((r) => `${r.decision} by ${short(r.signer)}: ${r.reason}`).join("; ") || "—"))),
    "Nothing waits for a signature")));
}

function alertsPart(alerts) {
  const rows = alerts.map((a) => h("tr", { dataset: { alert: a.id } },
    h("td", {}, a.id), h("td", {}, h("strong", {}, a.kind)), h("td", {}, a.market || "—"),
    h("td", {}, a.accounts.join(", ") || "—"), h("td", {}, `${when(a.window_start)} – ${when(a.window_end)}`),
    h("td", {}, when(a.detected_at)),
    h("td", { "data-label": "Evidence" }, h("details", { "data-testid": "evidence" }, h("summary", {}, "Evidence"),
      h("pre", { class: "evidence", tabindex: 0 }, JSON.stringify(a.evidence, null, 2))))));
  return section("Surveillance alerts", "console-alerts",
    h("div", { class: "cards" }, table(["Id", "Kind", "Market", "Accounts", "Window", "Detected", "Evidence"], rows,
      "No alert")));
}

function auditPart(a) {
  const v = a.verify;
  const state = v.ok
    ? h("p", { class: "notice ok", "data-testid": "audit-verify", dataset: { ok: "true" } },
      `Hash chain intact: ${num(v.rows)} rows. Head `, h("code", {}, `${v.head.seq}:${v.head.hash}`),
      " (keep a copy elsewhere: ", h("code", {}, "dpg audit verify --anchor SEQ:HASH"), " later finds rows cut from the end).")
    : h("p", { class: "notice", role: "alert", "data-testid": "audit-verify", dataset: { ok: "false" } },
      `Hash chain broken at row ${v.bad_seq}: ${v.problem}.`);
  const rows = a.entries.map((e) => h("tr", { dataset: { seq: e.seq } },
    h("td", { class: "num" }, e.seq), h("td", {}, when(e.ts)), h("td", {}, e.actor), h("td", {}, h("code", {}, e.action)),
    h("td", { class: "details" }, Object.entries(e.details).map(([k, val]) =>
      h("span", { class: "kv" }, `${k}=${typeof val === "object" ? JSON.stringify(val) : val} `)))));
  return section("Audit log", "console-audit", state,
    h("div", { class: "cards" }, table(["Seq", "Time", "Actor", "Action", "Details"], rows, "No entry yet")));
}

function backupsPart(b) {
  const rows = b.backups.map((x) => h("tr", { dataset: { backup: x.name } },
    h("td", {}, x.name), h("td", { class: "num" }, num(x.size)), h("td", {}, when(x.modified)),
    h("td", {}, h("span", { class: `badge ${x.state === "verified" ? "on" : "off"}` }, x.state),
      x.detail ? h("span", { class: "muted" }, ` ${x.detail}`) : null)));
  return section("Backups", "console-backups",
    h("p", { class: "muted" }, b.dir ? ["In ", h("code", {}, b.dir), "."] : "No backup folder is configured."),
    h("div", { class: "cards" }, table(["Backup", "Bytes", "Made", "Verification"], rows, "No backup yet")));
}

const PARTS = [
  ["/api/v1/console/health", healthPart],
  ["/api/v1/console/withdrawals", withdrawalsPart],
  ["/api/v1/console/alerts", alertsPart],
  ["/api/v1/console/audit?limit=100", auditPart],
  ["/api/v1/console/backups", backupsPart],
];

export async function mount(root) {
  if (!needSession(root)) return undefined;
  const head = h("section", { class: "panel", "data-testid": "console" }, h("h1", {}, "Operator console"));
  root.append(head);
  let me;
  try {
    me = await get("/api/v1/console/me");
  } catch (err) {
    head.append(h("p", { class: "notice", role: "alert", "data-testid": "console-closed" },
      CLOSED[err.code] || errorText(err), " ",
      err.code === "TWO_FACTOR_REQUIRED" ? h("a", { href: "/account/security" }, "Turn 2FA on") : null));
    return undefined;
  }
  const stamp = h("span", { class: "muted", "data-testid": "console-updated" });
  const parts = PARTS.map(() => h("div"));
  const refresh = async () => {
    await Promise.all(PARTS.map(async ([path, draw], i) => {
      try {
        replace(parts[i], draw(await get(path)));
      } catch (err) {
        replace(parts[i], h("p", { class: "notice", role: "alert" }, `${path}: ${errorText(err)}`));
      }
    }));
    stamp.textContent = `updated ${new Date().toLocaleTimeString([], { hour12: false })}`;
  };
  head.append(h("p", {}, "Signed in as operator ", h("strong", {}, me.email), ". ",
    h("button", { type: "button", class: "btn small", onclick: refresh }, "Refresh"), " ", stamp));
  root.append(h("div", { class: "console" }, parts));
  await refresh();
  const timer = setInterval(refresh, POLL_MS);
  return () => clearInterval(timer);
}
