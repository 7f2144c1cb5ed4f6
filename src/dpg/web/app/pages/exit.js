// The way out (/proof/exit): register the exit address (signed by that address: a browser wallet's
// eth_signTypedData_v4, or a signature pasted from elsewhere), download my latest proof, then with
// that proof: request a forced withdrawal, watch its countdown, freeze the vault, claim. Each action
// is a transaction from the exit address: sent by the browser wallet when there is one, else shown
// as ready-to-send data (to, data, value) for any wallet. The calldata comes from
// /api/v1/exit/transaction, a pure function of the proof (the same encoder as `dpg exit`): nothing
// here is signed or sent by the exchange, and `dpg exit` does the same without it.
import { ApiError, get, markets, post } from "../api.js";
import { copyButton, errorText, h, notify, replace } from "../dom.js";
import { formatUnits, group } from "../money.js";
import * as session from "../session.js";

const ACTIONS = {
  request: "Request a forced withdrawal",
  freeze_unserved: "Freeze the vault (request unserved)",
  freeze_silent: "Freeze the vault (no proof published)",
  claim: "Claim",
};

function trim(text) {
  return String(text).includes(".") ? String(text).replace(/0+$/, "").replace(/\.$/, "") : String(text);
}

function amount(units, asset, decimals) {
  const d = decimals[asset];
  if (d === undefined || !/^[0-9]+$/.test(String(units))) return `${units} ${asset}`;
  return `${group(trim(formatUnits(BigInt(units), d)))} ${asset}`;
}

function utc(seconds) {
  return `${new Date(Number(seconds) * 1000).toISOString().slice(0, 19).replace("T", " ")} UTC`;
}

/** "2 d 03:04:05" for a number of seconds. */
export function countdown(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const d = Math.floor(s / 86400);
  const hms = [Math.floor((s % 86400) / 3600), Math.floor((s % 3600) / 60), s % 60]
    .map((n) => String(n).padStart(2, "0")).join(":");
  return d ? `${d} d ${hms}` : hms;
}

async function wallet(method, params) {
  return window.ethereum.request({ method, params });
}

export async function mount(root) {
  const cleanup = [];
  const signedIn = !!session.current();
  const hasWallet = typeof window.ethereum?.request === "function";
  const msg = h("p", { class: "notice", hidden: true, role: "alert" });
  const exitBox = h("div", { "data-testid": "exit-address" });
  const proofBox = h("div", { "data-testid": "exit-proof" });
  const statusBox = h("div", { "data-testid": "exit-status" });
  const actionsBox = h("div", { "data-testid": "exit-actions" });
  const txBox = h("div", { "data-testid": "exit-tx" });
  root.append(h("div", { class: "proof exit", "data-testid": "exit" },
    h("section", { class: "panel" }, h("h1", {}, "Your way out"),
      h("p", {}, "Your funds do not depend on DPG staying up. Register an exit address (a wallet only you control); "
        + "each proof of reserves then carries it in your leaf. If DPG ever stops serving you, request a forced "
        + "withdrawal from the vault with your proof: DPG must pay your available balance to the exit address "
        + "within the grace period. If it does not — or publishes no proof for the silence period — anyone can "
        + "freeze the vault, and each exit address claims what its leaf holds, with no signature of DPG. "
        + "The same from a terminal: ", h("code", {}, "dpg exit request|freeze|claim|status PROOF.json --rpc URL"), "."),
      h("p", { class: "muted" }, hasWallet ? "A browser wallet is present: it signs and sends."
        : "No browser wallet here: each step gives you what to sign or send with a wallet elsewhere."), msg),
    h("section", { class: "panel" }, h("h2", {}, "Exit address"), exitBox),
    h("section", { class: "panel" }, h("h2", {}, "Your proof"), proofBox),
    h("section", { class: "panel" }, h("h2", {}, "Escape"), statusBox, actionsBox, txBox)));

  let decimals = {};
  try { ({ assets: decimals } = await markets()); } catch (e) { notify(msg, errorText(e)); }

  // ---------------------------------------------------------------- the exit address
  async function showExit() {
    if (!signedIn) {
      replace(exitBox, h("p", { class: "muted" }, h("a", { href: "/account/login" }, "Log in"), " to register your exit address."));
      return;
    }
    let info;
    try {
      info = await get("/api/v1/exit-address");
    } catch (e) {
      replace(exitBox, h("p", { class: "notice" }, errorText(e)));
      return;
    }
    const current = info.current?.address || null;
    const pending = info.pending?.address || null;
    const address = h("input", { name: "exit-address", placeholder: "0x… (40 hex digits)", autocomplete: "off", spellcheck: "false",
      value: typeof pending === "string" ? pending : (typeof current === "string" ? current : "") });
    const signature = h("textarea", { name: "exit-signature", rows: 2, spellcheck: "false",
      placeholder: "0x… the EIP-712 signature by the exit address (filled by the wallet)" });
    const totp = h("input", { name: "totp", inputmode: "numeric", autocomplete: "one-time-code", placeholder: "2FA code (for a change)" });
    const typedOut = h("pre", { class: "wrap", "data-testid": "exit-typed-data", hidden: true });
    const out = h("p", { hidden: true });
    // what the exit address signs: ExitAddress(account, exitAddress, nonce) in the home Vault's domain
    const typed = async () => (await get(`/api/v1/exit-address?address=${encodeURIComponent(address.value.trim())}`)).typedData;
    const signBtn = h("button", { type: "button", class: "btn", "data-testid": "exit-sign" },
      hasWallet ? "Sign with my wallet" : "Show what to sign");
    signBtn.addEventListener("click", async () => {
      try {
        if (!hasWallet) {
          typedOut.textContent = JSON.stringify(await typed(), null, 2);
          typedOut.hidden = false;
          return;
        }
        const [from] = await wallet("eth_requestAccounts", []);
        if (!address.value.trim()) address.value = from;
        signature.value = await wallet("eth_signTypedData_v4", [address.value.trim(), JSON.stringify(await typed())]);
      } catch (e) {
        notify(out, errorText(e));
      }
    });
    const save = h("button", { type: "submit", class: "btn primary", "data-testid": "exit-register" }, "Register");
    const form = h("form", { class: "stack" },
      h("label", {}, "Exit address", address), h("div", { class: "row gap" }, signBtn), typedOut,
      h("label", {}, "Signature", signature), current || pending ? h("label", {}, "2FA code", totp) : null, save, out);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      save.disabled = true;
      try {
        const body = { address: address.value.trim(), signature: signature.value.trim(), nonce: info.nextNonce };
        if (totp.value.trim()) body.totp = totp.value.trim();
        await post("/api/v1/exit-address", body);
        notify(out, "Registered: it is in your leaf from the next epoch on.", "ok");
        setTimeout(showExit, 1500);
      } catch (err) {
        notify(out, errorText(err));
      } finally {
        save.disabled = false;
      }
    });
    replace(exitBox,
      h("p", { "data-testid": "exit-current" }, "Current: ", current ? h("code", {}, String(current)) : "none (you can prove your balance, not escape with it)"),
      pending ? h("p", { "data-testid": "exit-pending" }, "Pending: ", h("code", {}, String(pending)),
        ` (in the proofs from ${info.effectiveFrom || "the next epoch marked"})`) : null,
      form);
  }

  // ---------------------------------------------------------------- the proof
  let proof = null;
  const assetSel = h("select", { name: "asset" }, Object.keys(decimals).map((a) => h("option", { value: a }, a)));
  const upload = h("input", { type: "file", name: "exit-proof-file", accept: "application/json,.json" });
  const proofOut = h("div");
  const fetchBtn = h("button", { type: "button", class: "btn primary", "data-testid": "exit-proof-fetch" }, "Download my latest proof");
  fetchBtn.addEventListener("click", async () => {
    try {
      const p = await get(`/api/v1/por/proof?asset=${encodeURIComponent(assetSel.value)}`);
      const blob = URL.createObjectURL(new Blob([JSON.stringify(p, null, 2)], { type: "application/json" }));
      cleanup.push(() => URL.revokeObjectURL(blob));
      const a = h("a", { href: blob, download: `dpg-proof-${p.asset}-${p.epoch}.json`, "data-testid": "exit-proof-download" },
        "Save the proof file");
      await useProof(p, a);
      a.click();
    } catch (e) {
      replace(proofOut, h("p", { class: "notice" }, errorText(e)));
    }
  });
  upload.addEventListener("change", async () => {
    const f = upload.files?.[0];
    if (!f) return;
    try { await useProof(JSON.parse(await f.text())); } catch (e) { replace(proofOut, h("p", { class: "notice" }, errorText(e))); }
  });
  replace(proofBox,
    signedIn ? h("div", { class: "row gap end" }, h("label", {}, "Asset", assetSel), fetchBtn) : null,
    h("label", {}, "…or use a proof file you keep", upload), proofOut);

  async function useProof(p, link) {
    proof = p;
    const exitAddress = String(p.exitAddress || "");
    replace(proofOut, h("dl", { class: "facts", "data-testid": "exit-proof-facts" },
      h("dt", {}, "Account, asset, epoch"), h("dd", {}, `${p.account ?? p.accountId}, ${p.asset}, epoch ${p.epoch}`),
      h("dt", {}, "Balance in the proof"), h("dd", { "data-testid": "exit-proof-balance" }, amount(p.balance, p.asset, decimals)),
      h("dt", {}, "Exit address in the leaf"), h("dd", {}, exitAddress && !/^0x0{40}$/i.test(exitAddress) ? h("code", {}, exitAddress)
        : "none: this proof can prove, not escape (register an exit address and use a later proof)")),
    link ? h("p", {}, link) : null);
    await refresh();
  }

  // ---------------------------------------------------------------- status, countdown and actions
  let status = null;
  let fetchedAt = 0;
  async function refresh() {
    if (!proof) {
      replace(statusBox, h("p", { class: "muted" }, "Download or choose your proof first."));
      replace(actionsBox);
      return;
    }
    try {
      status = await post("/api/v1/exit/status", { proof });
      fetchedAt = Date.now();
    } catch (e) {
      status = null;
      replace(statusBox, h("p", { class: "notice", "data-testid": "exit-status-error" }, errorText(e)));
      replace(actionsBox);
      return;
    }
    draw();
  }

  function draw() {
    if (!status) return;
    const elapsed = (Date.now() - fetchedAt) / 1000;
    const open = status.requests.filter((r) => !r.served);
    const last = open[open.length - 1];
    const left = last ? last.seconds_left - elapsed : null;
    const silence = status.seconds_to_silence - elapsed;
    replace(statusBox, h("dl", { class: "facts" },
      h("dt", {}, "Vault"), h("dd", { "data-testid": "exit-frozen", "data-frozen": String(status.frozen) },
        status.frozen ? `FROZEN at epoch ${status.frozen_epoch}: claim with the proof of that epoch` : "open (operating normally)"),
      h("dt", {}, "Forced withdrawal"), h("dd", { "data-testid": "exit-request-state" },
        last ? [`requested ${utc(last.requested_at)}; `, left > 0
          ? h("span", { "data-testid": "exit-countdown" }, `DPG has ${countdown(left)} left to serve it`)
          : h("strong", { "data-testid": "exit-countdown" }, "the grace period is over: anyone may freeze the vault")]
          : (status.requests.length ? "served" : "none")),
      h("dt", {}, "Silence"), h("dd", {}, silence > 0 ? `a proof must be published before ${utc(status.silent_from)}`
        : "no proof published for the silence period: anyone may freeze the vault"),
      h("dt", {}, "Claimed"), h("dd", { "data-testid": "exit-claimed", "data-claimed": String(status.claimed) },
        status.claimed ? status.claims.map((c) => `${amount(c.amount, status.asset, decimals)} to ${c.to}`).join("; ") : "no")));
    const can = {
      request: !status.frozen && !last,
      freeze_unserved: !status.frozen && !!last && left <= 0,
      freeze_silent: !status.frozen && silence <= 0,
      claim: status.frozen && !status.claimed,
    };
    replace(actionsBox, h("div", { class: "row gap" }, Object.entries(ACTIONS).map(([action, label]) => {
      const b = h("button", { type: "button", class: `btn${can[action] ? " primary" : ""}`, "data-action": action,
        "data-testid": `exit-${action}` }, label);
      b.disabled = !can[action];
      b.addEventListener("click", () => act(action, b));
      return b;
    })));
  }

  async function act(action, button) {
    button.disabled = true;
    try {
      const tx = await post("/api/v1/exit/transaction", { proof, action });
      if (hasWallet) {
        const [from] = await wallet("eth_requestAccounts", []);
        if (from.toLowerCase() !== tx.from.toLowerCase()) {
          throw new Error(`the wallet's account is ${from}; the transaction must come from the exit address ${tx.from}`);
        }
        const hash = await wallet("eth_sendTransaction", [{ from: tx.from, to: tx.to, data: tx.data, value: tx.value, chainId: tx.chainId }]);
        replace(txBox, h("p", { class: "notice ok", "data-testid": "exit-sent" }, `${ACTIONS[action]}: sent, transaction `, h("code", {}, hash)));
      } else {
        replace(txBox, h("div", { "data-testid": "exit-tx-data", "data-action": action },
          h("p", {}, `${ACTIONS[action]}: send this transaction from your exit address `, h("code", {}, tx.from),
            ` on chain ${BigInt(tx.chainId)} (with any wallet; it needs no signature of DPG):`),
          h("dl", { class: "facts" },
            h("dt", {}, "To"), h("dd", {}, h("code", { "data-testid": "exit-tx-to" }, tx.to), " ", copyButton(tx.to, "vault address")),
            h("dt", {}, "Value"), h("dd", { "data-testid": "exit-tx-value" }, tx.value),
            h("dt", {}, "Data"), h("dd", {}, h("code", { class: "wrap", "data-testid": "exit-tx-calldata" }, tx.data), " ",
              copyButton(tx.data, "transaction data")))));
      }
      setTimeout(refresh, 1500);
    } catch (e) {
      replace(txBox, h("p", { class: "notice", "data-testid": "exit-tx-error" }, e instanceof ApiError ? errorText(e) : String(e.message || e)));
    } finally {
      button.disabled = false;
    }
  }

  const tick = setInterval(draw, 1000);
  const poll = setInterval(() => { if (proof) refresh(); }, 15000);
  cleanup.push(() => clearInterval(tick), () => clearInterval(poll));
  await Promise.all([showExit(), refresh()]);
  return () => { for (const f of cleanup) f(); };
}
