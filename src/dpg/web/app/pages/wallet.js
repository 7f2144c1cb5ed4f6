// The wallet: how to deposit each asset on each custody chain (your own deposit address, the token
// named plainly, a QR code of an EIP-681 URI; the vault call with your account tag under
// "Advanced"), deposits received then with their confirmations as blocks are mined, the withdrawal
// allow-list (a new address usable after its waiting period) and the client addresses withdrawals
// may come from, the withdraw form (amounts parsed to base units, never floats; the fee and what
// arrives quoted before sending) and each withdrawal's timeline: requested → signed 1/3, 2/3, 3/3 →
// broadcast → confirmed n/N → completed (or failed, and why), with a cancel button until its third
// signature. A withdrawal and every allow-list change pass a confirmation step that shows what
// will happen (amount, fee, what arrives and where; the address, its label and when it becomes
// usable); where 2FA is off, the withdraw and allow-list forms prompt to turn it on.
// Deposits, withdrawals and balances are polled every 2 s while the page is open.
import { ApiError, del, get, markets, post, put } from "../api.js";
import { confirmStep } from "../confirm.js";
import { copyButton, dateTime, errorText, h, notify, replace, table } from "../dom.js";
import { MoneyError, formatUnits, group, parseUnits } from "../money.js";
import { needSession } from "./account.js";
import { qrSvg, twoFactorPrompt } from "./security.js";

const POLL_MS = 2000;
const QUOTE_DELAY_MS = 250;

/** "1.500000000000000000" -> "1.5" (display only). */
export function trim(text) {
  return String(text).includes(".") ? String(text).replace(/0+$/, "").replace(/\.$/, "") : String(text);
}

export function short(hex) {
  return hex && hex.length > 16 ? `${hex.slice(0, 10)}…${hex.slice(-6)}` : hex || "";
}

/** The steps of a withdrawal's timeline, each {key, label, state: done|current|todo|failed, at?, detail?}. */
export function steps(w) {
  const at = {};
  for (const e of w.timeline || []) if (!(e.step in at)) at[e.step] = e;
  const st = w.status;
  const sent = ["broadcast", "confirming", "queued", "completed"].includes(st) || "broadcast" in at;
  const done = st === "completed";
  const conf = `${w.confirmations}/${w.required_confirmations}`;
  const list = [
    { key: "requested", label: "requested", ok: "requested" in at || st !== "requesting" },
    { key: "signed-1", label: "signed 1/3", ok: w.signatures >= 1, ev: "signed 1/3" },
    { key: "signed-2", label: "signed 2/3", ok: w.signatures >= 2, ev: "signed 2/3" },
    { key: "signed-3", label: "signed 3/3", ok: w.signatures >= 3, ev: "signed 3/3" },
    { key: "broadcast", label: "broadcast", ok: sent, ev: "broadcast" },
    { key: "confirmed", label: `confirmed ${conf}`, ok: done || (w.required_confirmations > 0
      && w.confirmations >= w.required_confirmations), ev: "mined", partial: st === "confirming" },
    { key: "completed", label: "completed", ok: done, ev: "completed" },
  ];
  let current = st !== "failed" && !done;
  const out = list.map((s) => {
    const e = at[s.ev || s.key];
    let state = s.ok ? "done" : "todo";
    if (!s.ok && current) { state = "current"; current = false; }
    return { key: s.key, label: s.label, state, at: e?.at, detail: e?.detail };
  });
  if (st === "failed") {
    const e = at.failed;
    out.push({ key: "failed", label: "failed", state: "failed", at: e?.at, detail: w.reason || e?.detail });
  }
  return out;
}

function timelineEl(w) {
  return h("ol", { class: "timeline", "data-testid": "timeline" }, steps(w).map((s) =>
    h("li", { class: s.state, "data-step": s.key, title: s.detail || "" },
      h("span", { class: "dot" }), h("span", { class: "label" }, s.label),
      s.at ? h("small", {}, dateTime(s.at).slice(11)) : null,
      s.key === "failed" && s.detail ? h("span", { class: "reason", "data-testid": "reason" }, s.detail) : null)));
}

export async function mount(root) {
  if (!needSession(root)) return;
  let stopped = false;
  const cleanup = [];
  const msg = h("p", { class: "notice", hidden: true, role: "alert" });

  const depositBox = h("div", { "data-testid": "deposit" });
  const balancesBox = h("div", { "data-testid": "wallet-balances" });
  const depositsBox = h("div", { "data-testid": "deposits" });
  const withdrawBox = h("div", { "data-testid": "withdraw" });
  const allowBox = h("div", { "data-testid": "allow-list" });
  const withdrawalsBox = h("div", { "data-testid": "withdrawals" });
  root.append(h("div", { class: "wallet", "data-testid": "wallet" },
    h("section", { class: "panel w-deposit" }, h("h1", {}, "Deposit"), depositBox),
    h("section", { class: "panel w-deposits cards", tabindex: "0", "aria-label": "Deposits" }, h("h2", {}, "Deposits"), depositsBox),
    h("section", { class: "panel w-withdraw" }, h("h1", {}, "Withdraw"), msg, withdrawBox),
    h("section", { class: "panel w-withdrawals" }, h("h2", {}, "Withdrawals"), withdrawalsBox),
    h("section", { class: "panel w-balances" }, h("h2", {}, "Balances"), balancesBox),
    h("section", { class: "panel w-allow" }, h("h2", {}, "Withdrawal addresses (allow-list)"), allowBox)));

  let chains, decimals, twoFactor;
  try {
    [chains, { assets: decimals }, twoFactor] = await Promise.all([
      get("/api/v1/wallet/chains"), markets(), get("/api/v1/auth/2fa").then((r) => r.enabled)]);
  } catch (e) {
    notify(msg, errorText(e));
    return () => {};
  }
  if (!chains.length) {
    replace(depositBox, h("p", { class: "muted" }, "This exchange runs no custody chain: deposits and withdrawals are off."));
    return () => {};
  }
  const pairs = chains.flatMap((c) => c.assets.map((a) => ({ chain: c, asset: a.asset, token: a.token, symbol: a.symbol })));
  const byChain = Object.fromEntries(chains.map((c) => [c.chain, c]));
  const assets = [...new Set(pairs.map((p) => p.asset))];
  let balances = {};
  let addresses = [];

  // ---------------------------------------------------------------- deposit
  const where = {};
  const chainName = (c) => c.charAt(0).toUpperCase() + c.slice(1);
  const pick = h("select", { name: "deposit-pair", "aria-label": "asset and chain" },
    pairs.map((p, i) => h("option", { value: i }, p.symbol === p.asset ? `${p.asset} on ${chainName(p.chain.chain)}`
      : `${p.asset} · ${p.symbol} on ${chainName(p.chain.chain)}`)));
  const how = h("div", { class: "how" });
  // the vault call tagged with the account: the way to deposit on a chain without deposit
  // addresses, and the "Advanced" way elsewhere
  function taggedCall(p, d, native) {
    const a = d.advanced || d;
    const uri = native ? a.uri : `ethereum:${a.vault}@${d.chain_id}`;
    return [
      h("dl", { class: "facts" },
        h("dt", {}, "Vault address"),
        h("dd", {}, h("code", { "data-testid": "vault" }, a.vault), " ", copyButton(a.vault, "vault address")),
        h("dt", {}, "Your account tag"),
        h("dd", {}, h("code", { "data-testid": "account-tag" }, String(a.account)), " ", copyButton(String(a.account), "account tag")),
        h("dt", {}, native ? "Send" : "Token"),
        h("dd", {}, native ? `${p.asset}, with depositETH(${a.account})`
          : [h("code", {}, p.token), ` (${p.symbol}): approve the vault, then depositToken(token, amount, ${a.account})`]),
        h("dt", {}, "Credited after"),
        h("dd", {}, `${d.confirmations} confirmations on ${p.chain.chain} (chain id ${d.chain_id})`)),
      h("p", { class: "muted small" }, "Always include your account tag: a deposit without it cannot be credited to you. ",
        d.address ? null : ["The QR code holds ", h("code", {}, uri), "."]),
      uri,
    ];
  }
  async function showDeposit() {
    const p = pairs[Number(pick.value)];
    try {
      where[p.chain.chain] ||= await get(`/api/v1/wallet/deposit-address?chain=${encodeURIComponent(p.chain.chain)}`);
    } catch (e) {
      return replace(how, h("p", { class: "notice" }, errorText(e)));
    }
    const d = where[p.chain.chain];
    const native = p.token === "0x0000000000000000000000000000000000000000";
    const [facts, note, callUri] = taggedCall(p, d, native);
    const asset = (d.assets || []).find((a) => a.token === p.token);
    if (!d.address || !asset) {
      return replace(how, h("div", { class: "qrbox" }, qrSvg(callUri)), facts, note);
    }
    replace(how,
      h("div", { class: "qrbox", title: asset.uri }, qrSvg(asset.uri)),
      h("dl", { class: "facts" },
        h("dt", {}, "Send"),
        h("dd", { "data-testid": "deposit-token" }, h("strong", {}, asset.name),
          p.symbol !== p.asset ? ` (credited as ${p.asset})` : null),
        h("dt", {}, "To your address"),
        h("dd", {}, h("code", { "data-testid": "deposit-address" }, d.address), " ",
          copyButton(d.address, "deposit address")),
        native ? null : h("dt", {}, "Token contract"),
        native ? null : h("dd", {}, h("code", { title: p.token }, short(p.token))),
        asset.min_deposit ? h("dt", {}, "Minimum") : null,
        asset.min_deposit ? h("dd", {}, `${group(trim(asset.min_deposit))} ${p.asset}`) : null,
        h("dt", {}, "Credited after"),
        h("dd", {}, `${d.confirmations} confirmations on ${chainName(p.chain.chain)}, once moved into the vault`)),
      h("p", { class: "muted small" }, `Send only ${asset.name} (chain id ${d.chain_id}) to this address, from any wallet `
        + "or exchange: no tag or memo is needed. It is yours alone; less than the minimum waits there until more "
        + "arrives. The QR code holds ", h("code", { "data-testid": "deposit-uri" }, asset.uri), "."),
      h("details", { class: "advanced", "data-testid": "advanced" },
        h("summary", {}, "Advanced: deposit by a vault call with your account tag"),
        h("div", { class: "how" }, h("div", { class: "qrbox" }, qrSvg(callUri)), facts, note)));
  }
  pick.addEventListener("change", showDeposit);
  replace(depositBox, h("label", {}, "Asset and chain", pick), how);
  await showDeposit();

  // ---------------------------------------------------------------- balances and deposits
  function showBalances() {
    const rows = assets.map((a) => {
      const b = balances[a] || { available: "0", locked: "0" };
      return h("tr", { dataset: { asset: a } }, h("td", {}, a),
        h("td", { class: "num", "data-testid": `wallet-available-${a}` }, group(trim(b.available))),
        h("td", { class: "num", "data-testid": `wallet-locked-${a}` }, group(trim(b.locked))));
    });
    replace(balancesBox, table(["Asset", "Available", "Locked"], rows));
    form.update();
  }

  function showDeposits(list) {
    const pending = list.filter((d) => d.status === "pending" || d.status === "received");
    const rows = list.map((d) => h("tr", { dataset: { status: d.status, tx: d.tx_hash || "" }, "data-testid": `deposit-${d.status}` },
      h("td", {}, d.asset), h("td", { class: "num" }, group(trim(d.amount))),
      h("td", { class: "num", "data-testid": "confirmations" }, d.status === "received" ? "—" : `${d.confirmations}/${d.required}`),
      h("td", { class: d.status === "credited" ? "ok" : "pending", title: d.status === "received"
        ? "at your deposit address: being moved into the vault (or waiting for the minimum)" : "" },
      d.status === "credited" || d.status === "received" ? d.status : "pending"),
      h("td", {}, d.chain), h("td", {}, dateTime(d.seen_at)), h("td", {}, h("code", { title: d.tx_hash }, short(d.tx_hash)))));
    replace(depositsBox,
      pending.length ? h("p", { class: "notice info", "data-testid": "pending-note" },
        `${pending.length} deposit${pending.length > 1 ? "s" : ""} waiting to be credited`) : null,
      table(["Asset", "Amount", "Confirmations", "Status", "Chain", "Seen", "Transaction"], rows, "No deposits yet"));
  }

  // ---------------------------------------------------------------- allow-list
  const addChain = h("select", { name: "allow-chain" }, chains.map((c) => h("option", { value: c.chain }, c.chain)));
  const addAddress = h("input", { name: "allow-address", placeholder: "0x…", autocomplete: "off", spellcheck: "false", required: true });
  const addLabel = h("input", { name: "allow-label", placeholder: "e.g. my cold wallet", maxlength: 64 });
  const addTotp = h("input", { name: "allow-totp", inputmode: "numeric", autocomplete: "one-time-code", maxlength: 8, required: twoFactor });
  const allowMsg = h("p", { class: "notice", hidden: true, role: "alert" });
  const allowList = h("div", { class: "cards" });
  const addForm = h("form", { class: "stack", "data-testid": "allow-add" },
    twoFactor ? null : twoFactorPrompt("new withdrawal addresses"),
    h("div", { class: "row gap" }, h("label", {}, "Chain", addChain), h("label", { class: "grow" }, "Address", addAddress)),
    h("label", {}, "Label", addLabel),
    twoFactor ? h("label", {}, "2FA code", addTotp) : null,
    h("button", { type: "submit", class: "btn" }, "Add address"), allowMsg);
  // when a new address becomes usable: after the exchange's waiting period
  function usableFrom(chain) {
    const wait = byChain[chain]?.address_cooldown_s;
    if (wait === undefined) return "after the exchange's waiting period";
    if (wait <= 0) return "at once";
    const hours = wait / 3600;
    return `from ${dateTime(Date.now() + wait * 1000)} (in ${hours >= 1 ? `${trim(hours.toFixed(1))} h` : `${Math.ceil(wait / 60)} min`})`;
  }
  addForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    notify(allowMsg, "");
    const address = addAddress.value.trim();
    const ok = await confirmStep({
      kind: "allow-add", title: "Add this withdrawal address?", confirm: "Add the address",
      intro: "Withdrawals may then be sent to it. Check it character by character against the wallet it belongs to.",
      facts: [["Chain", `${chainName(addChain.value)} (chain id ${byChain[addChain.value].chain_id})`, "confirm-chain"],
        ["Address", h("code", {}, address), "confirm-address"], ["Label", addLabel.value.trim() || "—", "confirm-label"],
        ["Usable", usableFrom(addChain.value), "confirm-usable"]],
      warnings: [twoFactor ? null : "Two-factor authentication is off: your password alone can add addresses."],
    });
    if (!ok) return;
    try {
      await post("/api/v1/wallet/addresses", { chain: addChain.value, address: addAddress.value.trim(),
        label: addLabel.value.trim(), totp: twoFactor ? addTotp.value.trim() : undefined });
      addAddress.value = ""; addLabel.value = ""; addTotp.value = "";
      notify(allowMsg, "Address added.", "ok");
      await loadAddresses();
    } catch (err) {
      notify(allowMsg, errorText(err));
    }
  });
  // the client addresses (IP) withdrawals and allow-list changes are accepted from
  const ipList = h("input", { name: "ip-allow", placeholder: "e.g. 203.0.113.7, 198.51.100.0/24 (empty: any)", autocomplete: "off", spellcheck: "false" });
  const ipTotp = h("input", { name: "ip-allow-totp", inputmode: "numeric", autocomplete: "one-time-code", maxlength: 8, required: twoFactor });
  const ipNow = h("p", { class: "muted small", "data-testid": "ip-allow-current" });
  const ipMsg = h("p", { class: "notice", hidden: true, role: "alert" });
  const ipForm = h("form", { class: "stack", "data-testid": "ip-allow" },
    h("h3", {}, "Withdrawals only from these IP addresses"), ipNow,
    h("label", {}, "Addresses or networks, comma-separated", ipList),
    twoFactor ? h("label", {}, "2FA code", ipTotp) : null,
    h("button", { type: "submit", class: "btn" }, "Save"), ipMsg);
  function showIps(r) {
    ipList.value = r.networks.join(", ");
    ipNow.textContent = `${r.networks.length ? `Only from: ${r.networks.join(", ")}` : "From any address"}. `
      + `You are at ${r.your_address}.`;
  }
  ipForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    notify(ipMsg, "");
    const networks = ipList.value.split(",").map((x) => x.trim()).filter(Boolean);
    const ok = await confirmStep({ kind: "ip-allow", title: "Change where withdrawals may come from?", confirm: "Save",
      facts: [["Allowed from", networks.length ? networks.join(", ") : "any address", "confirm-networks"]],
      intro: networks.length ? "Withdrawals and allow-list changes from any other address will be refused."
        : "Withdrawals and allow-list changes will be accepted from any address." });
    if (!ok) return;
    try {
      showIps(await put("/api/v1/wallet/ip-allow", { networks, totp: twoFactor ? ipTotp.value.trim() : undefined }));
      ipTotp.value = "";
      notify(ipMsg, "Saved.", "ok");
    } catch (err) {
      notify(ipMsg, errorText(err));
    }
  });
  replace(allowBox, allowList, addForm, ipForm);
  get("/api/v1/wallet/ip-allow").then(showIps, (e) => notify(ipMsg, errorText(e)));

  const usableNow = (a) => a.usable_at <= Date.now();
  async function loadAddresses() {
    addresses = await get("/api/v1/wallet/addresses");
    replace(allowList, table(["Chain", "Label", "Address", "Usable", ""], addresses.map((a) =>
      h("tr", { dataset: { address: a.address } }, h("td", {}, a.chain), h("td", {}, a.label || "—"),
        h("td", {}, h("code", {}, a.address)),
        h("td", { "data-testid": "allow-usable", class: usableNow(a) ? "" : "pending" },
          usableNow(a) ? "now" : `from ${dateTime(a.usable_at)}`),
        h("td", {}, h("button", { type: "button", class: "btn small danger", "data-testid": "allow-remove",
          "aria-label": `Remove ${a.label || a.address} from the allow-list`, onclick: async (e) => {
          const ok = await confirmStep({ kind: "allow-remove", title: "Remove this withdrawal address?", confirm: "Remove",
            danger: true, facts: [["Chain", chainName(a.chain)], ["Address", h("code", {}, a.address)], ["Label", a.label || "—"]],
            intro: "Withdrawals to it are refused from now on; adding it again starts a new waiting period." });
          if (!ok) return;
          e.target.disabled = true;
          try {
            await del(`/api/v1/wallet/addresses/${encodeURIComponent(a.chain)}/${a.address}`);
            await loadAddresses();
          } catch (err) {
            e.target.disabled = false;
            notify(allowMsg, errorText(err));
          }
        } }, "Remove")))), "No addresses yet: add one to withdraw to it"));
    form.addresses();
  }

  // ---------------------------------------------------------------- withdraw
  const wAsset = h("select", { name: "withdraw-asset" }, assets.map((a) => h("option", { value: a }, a)));
  const wChain = h("select", { name: "withdraw-chain" });
  const wAddress = h("select", { name: "withdraw-address" });
  const wAmount = h("input", { name: "withdraw-amount", inputmode: "decimal", autocomplete: "off", placeholder: "0.00", required: true });
  const wTotp = h("input", { name: "withdraw-totp", inputmode: "numeric", autocomplete: "one-time-code", maxlength: 8, required: twoFactor });
  const avail = h("p", { class: "avail", "data-testid": "withdraw-available" });
  const units = h("p", { class: "muted small", "data-testid": "withdraw-units" });
  const quoteEl = h("p", { class: "quote", "data-testid": "withdraw-quote" });
  const max = h("button", { type: "button", class: "btn small", "data-testid": "withdraw-max" }, "Max");
  const send = h("button", { type: "submit", class: "btn primary wide" }, "Withdraw");
  const wForm = h("form", { class: "stack", "data-testid": "withdraw-form" },
    twoFactor ? null : twoFactorPrompt("withdrawals"),
    h("div", { class: "row gap" }, h("label", {}, "Asset", wAsset), h("label", {}, "Chain", wChain)),
    h("label", {}, "To (allow-listed)", wAddress),
    h("label", {}, "Amount", h("div", { class: "with-unit" }, wAmount, max)), avail, units, quoteEl,
    twoFactor ? h("label", {}, "2FA code", wTotp) : null, send);
  replace(withdrawBox, wForm);

  const form = {
    decimals() { return decimals[wAsset.value] ?? 0; },
    available() {
      const b = balances[wAsset.value];
      return b ? parseUnits(b.available, this.decimals()) : 0n;
    },
    chains() {
      const on = chains.filter((c) => c.assets.some((a) => a.asset === wAsset.value));
      const keep = wChain.value;
      replace(wChain, on.map((c) => h("option", { value: c.chain }, c.chain)));
      if (on.some((c) => c.chain === keep)) wChain.value = keep;
      this.addresses();
    },
    addresses() {
      const keep = wAddress.value;
      const mine = addresses.filter((a) => a.chain === wChain.value);
      replace(wAddress, mine.length ? mine.map((a) => h("option", { value: a.address, disabled: !usableNow(a) },
        `${a.label ? `${a.label} · ` : ""}${short(a.address)}${usableNow(a) ? "" : ` (usable from ${dateTime(a.usable_at)})`}`))
        : h("option", { value: "" }, "add an address to the allow-list first"));
      if (mine.some((a) => a.address === keep)) wAddress.value = keep;
      this.quote();
    },
    update() {
      const d = this.decimals();
      avail.textContent = `Available: ${group(trim(formatUnits(this.available(), d)))} ${wAsset.value}`;
      const text = wAmount.value.trim();
      this.quote();
      if (!text) { units.textContent = ""; return null; }
      try {
        const u = parseUnits(text, d);
        units.textContent = `${formatUnits(u, d)} ${wAsset.value} = ${u} base units`;
        units.classList.toggle("bad", u > this.available());
        return u;
      } catch (e) {
        units.textContent = e instanceof MoneyError ? e.message : String(e);
        units.classList.add("bad");
        return null;
      }
    },
    // the fee and what arrives, asked of the exchange a moment after the last change
    quoteTimer: null,
    quoteSeq: 0,
    quote() {
      clearTimeout(this.quoteTimer);
      const seq = ++this.quoteSeq;
      let amount;
      try {
        amount = parseUnits(wAmount.value.trim(), this.decimals());
      } catch {
        amount = 0n;
      }
      if (amount <= 0n || !wChain.value) { quoteEl.textContent = ""; return; }
      const q = new URLSearchParams({ asset: wAsset.value, chain: wChain.value, amount: formatUnits(amount, this.decimals()) });
      if (wAddress.value) q.set("address", wAddress.value);
      this.quoteTimer = setTimeout(async () => {
        try {
          const r = await get(`/api/v1/wallet/withdrawal-quote?${q}`);
          if (seq !== this.quoteSeq) return;
          const to = r.destination.address ? ` at ${short(r.destination.address)}` : "";
          replace(quoteEl, "Fee ", h("strong", { "data-testid": "withdraw-fee" }, `${group(trim(r.fee))} ${r.fee_asset}`),
            " · you receive ", h("strong", { "data-testid": "withdraw-receive" }, `${group(trim(r.receive))} ${r.asset}`),
            `${to} on ${r.destination.chain}`);
          quoteEl.classList.remove("bad");
        } catch (e) {
          if (seq !== this.quoteSeq) return;
          quoteEl.textContent = errorText(e);
          quoteEl.classList.add("bad");
        }
      }, QUOTE_DELAY_MS);
    },
  };
  wAsset.addEventListener("change", () => { form.chains(); form.update(); });
  wChain.addEventListener("change", () => form.addresses());
  wAddress.addEventListener("change", () => form.quote());
  wAmount.addEventListener("input", () => form.update());
  max.addEventListener("click", () => {
    wAmount.value = trim(formatUnits(form.available(), form.decimals()));
    form.update();
  });
  wForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    notify(msg, "");
    const d = form.decimals();
    let amount;
    try {
      amount = parseUnits(wAmount.value, d);
    } catch (err) {
      return notify(msg, `Amount: ${err.message}`);
    }
    if (amount <= 0n) return notify(msg, "Amount: must be more than zero");
    if (amount > form.available()) return notify(msg, "Amount: more than your available balance");
    if (!wAddress.value) return notify(msg, "Add an address to your allow-list first");
    send.disabled = true;
    try {
      // the confirmation step, from a fresh quote of the exchange: amount, fee, what arrives, where
      const q = await get(`/api/v1/wallet/withdrawal-quote?${new URLSearchParams({ asset: wAsset.value, chain: wChain.value,
        amount: formatUnits(amount, d), address: wAddress.value })}`);
      const to = addresses.find((a) => a.chain === wChain.value && a.address === wAddress.value);
      const ok = await confirmStep({
        kind: "withdraw", title: "Confirm the withdrawal", confirm: "Withdraw",
        facts: [["Amount", `${group(trim(q.amount))} ${q.asset}`, "confirm-amount"],
          ["Fee", `${group(trim(q.fee))} ${q.fee_asset}`, "confirm-fee"],
          ["You receive", h("strong", {}, `${group(trim(q.receive))} ${q.asset}`), "confirm-receive"],
          ["To", [to?.label ? h("strong", {}, to.label, " ") : null, h("code", {}, q.destination.address)], "confirm-destination"],
          ["Chain", `${chainName(q.destination.chain)} (chain id ${byChain[q.destination.chain].chain_id})`, "confirm-chain"]],
        warnings: ["Once broadcast a withdrawal cannot be reversed; until its third signature you may cancel it.",
          twoFactor ? null : "Two-factor authentication is off: your password alone can withdraw."],
      });
      if (!ok) return;
      const w = await post("/api/v1/withdrawals", { asset: wAsset.value, chain: wChain.value, address: wAddress.value,
        amount: formatUnits(amount, d), totp: twoFactor ? wTotp.value.trim() : undefined });
      wAmount.value = ""; wTotp.value = "";
      notify(msg, `Withdrawal of ${trim(w.amount)} ${w.asset} requested (fee ${trim(w.fee)}, you receive ${trim(w.receive)}).`, "ok");
      form.quote();
      await refresh();
    } catch (err) {
      notify(msg, errorText(err));
    } finally {
      send.disabled = false;
    }
  });
  form.chains();

  // ---------------------------------------------------------------- withdrawals
  function showWithdrawals(list) {
    replace(withdrawalsBox, list.length ? list.map((w) =>
      h("article", { class: `withdrawal ${w.status}`, "data-testid": "withdrawal", dataset: { id: w.id, status: w.status } },
        h("div", { class: "whead" },
          h("strong", {}, `${group(trim(w.amount))} ${w.asset}`), h("span", { class: "muted" }, ` on ${w.chain} to `),
          h("code", { title: w.address }, short(w.address)),
          h("span", { class: "muted small" }, ` fee ${group(trim(w.fee))}`),
          w.cancellable ? h("button", { type: "button", class: "btn small danger", "data-testid": "withdrawal-cancel",
            title: "cancel it before its third signature: the funds return at once", onclick: async (e) => {
              e.target.disabled = true;
              try {
                await del(`/api/v1/withdrawals/${w.id}`);
                await refresh();
              } catch (err) {
                e.target.disabled = false;
                notify(msg, errorText(err));
              }
            } }, "Cancel") : null,
          h("span", { class: `status ${w.status}`, "data-testid": "withdrawal-status" }, w.status)),
        timelineEl(w),
        w.tx_hash ? h("p", { class: "muted small" }, "Transaction ", h("code", { "data-testid": "tx-hash" }, w.tx_hash)) : null,
        h("details", {}, h("summary", {}, "Events"),
          h("ul", { class: "events" }, w.timeline.map((e) => h("li", {}, h("small", {}, dateTime(e.at)), ` ${e.step} `,
            h("span", { class: "muted" }, e.detail || ""))))))) : h("p", { class: "muted" }, "No withdrawals yet"));
  }

  // ---------------------------------------------------------------- polling
  let last = {};
  async function refresh() {
    const [bal, deps, wds] = await Promise.all([get("/api/v1/balances"), get("/api/v1/wallet/deposits"), get("/api/v1/withdrawals")]);
    if (stopped) return;
    const key = (x) => JSON.stringify(x);
    if (key(bal) !== last.bal) { last.bal = key(bal); balances = Object.fromEntries(bal.map((b) => [b.asset, b])); showBalances(); }
    if (key(deps) !== last.deps) { last.deps = key(deps); showDeposits(deps); }
    const openDetails = new Set([...withdrawalsBox.querySelectorAll("article")].filter((a) => a.querySelector("details")?.open).map((a) => a.dataset.id));
    if (key(wds) !== last.wds) {
      last.wds = key(wds);
      showWithdrawals(wds);
      for (const a of withdrawalsBox.querySelectorAll("article")) if (openDetails.has(a.dataset.id)) a.querySelector("details").open = true;
    }
  }
  try {
    await Promise.all([refresh(), loadAddresses()]);
  } catch (e) {
    notify(msg, errorText(e));
  }
  let timer = null;
  const tick = async () => {
    try {
      await refresh();
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) return;
    }
    if (!stopped) timer = setTimeout(tick, POLL_MS);
  };
  timer = setTimeout(tick, POLL_MS);
  cleanup.push(() => clearTimeout(timer));
  return () => { stopped = true; for (const f of cleanup) f(); };
}
