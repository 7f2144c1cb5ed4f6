// Governance: my DPG (held, staked, the USDT earned, votes, delegate, the APR of the last reward
// period), stake / unstake / claim and delegate; the proposals with their state, votes and
// countdown, and voting on them; the parameters governance changed. Every action is a transaction
// the user signs: sent through the browser's wallet (window.ethereum) when there is one, else
// shown as its data (to, data, value) for any wallet. The calldata is encoded here (keccak-256
// from @noble/hashes); the exchange only reads the chain (GET /api/v1/governance/*).
import { keccak_256 } from "@noble/hashes/sha3.js";
import { get } from "../api.js";
import { copyButton, errorText, h, notify, replace, table } from "../dom.js";
import { MoneyError, group, parseUnits } from "../money.js";

const DPG_DECIMALS = 18;
const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const SUPPORT = { Against: 0, For: 1, Abstain: 2 }; // GovernorCountingSimple
const POLL_MS = 4000;

const enc = new TextEncoder();

function hex(bytes) {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

/** One static ABI argument as 32 bytes of hex: a 0x address, a boolean or an unsigned integer. */
function word(arg) {
  if (typeof arg === "string" && ADDRESS.test(arg)) return arg.slice(2).toLowerCase().padStart(64, "0");
  if (typeof arg === "boolean") return arg ? "1".padStart(64, "0") : "0".padStart(64, "0");
  const n = BigInt(arg);
  if (n < 0n || n >= 1n << 256n) throw new RangeError(`${arg} is not a uint256`);
  return n.toString(16).padStart(64, "0");
}

/** The calldata of `signature` ("stake(uint256)") with static arguments. */
export function calldata(signature, ...args) {
  return `0x${hex(keccak_256(enc.encode(signature)).slice(0, 4))}${args.map(word).join("")}`;
}

function countdown(seconds) {
  if (seconds <= 0) return "now";
  const d = Math.floor(seconds / 86400);
  const hms = [Math.floor(seconds / 3600) % 24, Math.floor(seconds / 60) % 60, seconds % 60]
    .map((x) => String(x).padStart(2, "0")).join(":");
  return d ? `${d} d ${hms}` : hms;
}

/** What a proposal waits for next and when (unix seconds), or null. */
function nextStep(p) {
  if (p.state === "Pending") return ["voting starts in", Number(p.vote_start)];
  if (p.state === "Active") return ["voting ends in", Number(p.vote_end)];
  if (p.state === "Queued" && p.eta) return ["executable in", Number(p.eta)];
  return null;
}

function actionText(a) {
  return `${a.signature}(${(a.args || []).map(String).join(", ")})`;
}

function valuesText(values) {
  return Object.entries(values || {}).map(([k, v]) => `${k} ${v}`).join(", ");
}

/** A decimal amount of the API ("30000000.5") grouped for reading ("30,000,000.5"); else as it came. */
function num(x) {
  const s = String(x ?? "—");
  if (!/^[0-9]+(\.[0-9]+)?$/.test(s)) return s;
  return group(s.includes(".") ? s.replace(/0+$/, "").replace(/\.$/, "") : s);
}

function short(x) {
  const s = String(x);
  return s.length > 18 ? `${s.slice(0, 10)}…${s.slice(-6)}` : s;
}

export async function mount(root) {
  const state = { address: "", gov: null, proposals: [], account: null, now: Math.floor(Date.now() / 1000) };
  const wallet = window.ethereum || null;
  const msg = h("div", { class: "notice", hidden: true, role: "status" });
  const txBox = h("div", { class: "txs", "data-testid": "tx-data", hidden: true });
  const mine = h("section", { class: "panel", "data-testid": "my-dpg" });
  const proposals = h("section", { class: "panel", "data-testid": "proposals" });
  const params = h("section", { class: "panel", "data-testid": "params" });
  const history = h("section", { class: "panel", "data-testid": "history" });

  const addressInput = h("input", { name: "address", placeholder: "0x… your address", autocomplete: "off",
    spellcheck: "false", size: 44, "aria-label": "Your address" });
  const amountInput = h("input", { name: "amount", inputmode: "decimal", placeholder: "DPG", size: 14,
    "aria-label": "Amount of DPG" });
  const delegateInput = h("input", { name: "delegatee", placeholder: "0x… delegate to", size: 44,
    "aria-label": "Delegate to" });

  const connect = h("div", { class: "connect" },
    wallet
      ? h("button", { type: "button", "data-testid": "connect", onclick: async () => {
        try {
          const [a] = await wallet.request({ method: "eth_requestAccounts" });
          setAddress(a);
        } catch (e) { notify(msg, errorText(e)); }
      } }, "Connect wallet")
      : h("span", { class: "muted" }, "No browser wallet: each action shows the transaction to send from yours. "),
    h("form", { class: "inline", onsubmit: (e) => { e.preventDefault(); setAddress(addressInput.value.trim()); } },
      addressInput, h("button", { type: "submit" }, "Show")));

  function setAddress(a) {
    if (!ADDRESS.test(a)) { notify(msg, "an address is 0x and 40 hex digits"); return; }
    state.address = a.toLowerCase();
    addressInput.value = state.address;
    notify(msg, "");
    refresh();
  }

  /** Send `txs` ([{to, data, label}]) from the user's wallet one after another, or show them. */
  async function act(txs) {
    notify(msg, "");
    if (!state.address) { notify(msg, "give your address (or connect your wallet) first"); return; }
    if (!wallet) {
      replace(txBox, h("p", {}, `Send ${txs.length === 1 ? "this transaction" : `these ${txs.length} transactions, in order,`}`
        + ` from ${state.address} on chain ${state.gov?.contracts?.chain_id ?? "?"}:`),
      txs.map((t, i) => h("div", { class: "tx", "data-testid": "tx", dataset: { to: t.to, data: t.data, value: "0" } },
        h("h3", {}, `${i + 1}. ${t.label}`),
        h("dl", { class: "facts" },
          h("dt", {}, "to"), h("dd", {}, h("code", {}, t.to), copyButton(t.to, "address")),
          h("dt", {}, "data"), h("dd", {}, h("code", { class: "wrap" }, t.data), copyButton(t.data, "data")),
          h("dt", {}, "value"), h("dd", {}, h("code", {}, "0"))))));
      txBox.hidden = false;
      return;
    }
    try {
      for (const t of txs) {
        notify(msg, `${t.label}: confirm in your wallet…`, "ok");
        const hash = await wallet.request({ method: "eth_sendTransaction",
          params: [{ from: state.address, to: t.to, data: t.data, value: "0x0" }] });
        notify(msg, `${t.label}: sent ${hash}`, "ok");
        await receipt(hash);
      }
      notify(msg, `${txs.map((t) => t.label).join(", ")}: done`, "ok");
    } catch (e) {
      notify(msg, errorText(e));
    }
    refresh();
  }

  async function receipt(hash) {
    for (let i = 0; i < 120; i++) {
      const r = await wallet.request({ method: "eth_getTransactionReceipt", params: [hash] });
      if (r) {
        if (BigInt(r.status) !== 1n) throw new Error(`transaction ${hash} failed`);
        return r;
      }
      await new Promise((ok) => setTimeout(ok, 500));
    }
    throw new Error(`transaction ${hash} not mined yet`);
  }

  function amount() {
    try {
      const units = parseUnits(amountInput.value, DPG_DECIMALS);
      if (units <= 0n) throw new MoneyError("more than 0");
      return units;
    } catch (e) {
      notify(msg, `amount: ${e.message}`);
      return null;
    }
  }

  const c = () => state.gov?.contracts || {};
  const actions = h("div", { class: "actions" },
    h("form", { class: "inline", onsubmit: (e) => e.preventDefault() },
      amountInput,
      h("button", { type: "button", "data-testid": "stake", onclick: () => {
        const n = amount();
        if (n !== null) {
          act([{ to: c().token, data: calldata("approve(address,uint256)", c().staking, n), label: "Approve DPG" },
            { to: c().staking, data: calldata("stake(uint256)", n), label: "Stake" }]);
        }
      } }, "Stake"),
      h("button", { type: "button", "data-testid": "unstake", onclick: () => {
        const n = amount();
        if (n !== null) act([{ to: c().staking, data: calldata("withdraw(uint256)", n), label: "Unstake" }]);
      } }, "Unstake"),
      h("button", { type: "button", "data-testid": "claim", onclick: () =>
        act([{ to: c().staking, data: calldata("getReward()"), label: "Claim USDT" }]) }, "Claim")),
    h("form", { class: "inline", onsubmit: (e) => {
      e.preventDefault();
      const to = delegateInput.value.trim() || state.address;
      if (!ADDRESS.test(to)) { notify(msg, "delegate to an address: 0x and 40 hex digits"); return; }
      // the votes of held DPG and of staked DPG (sDPG) are delegated apart
      act([{ to: c().token, data: calldata("delegate(address)", to), label: "Delegate DPG" },
        { to: c().staking, data: calldata("delegate(address)", to), label: "Delegate staked DPG" }]);
    } }, delegateInput, h("button", { type: "submit", "data-testid": "delegate" }, "Delegate")));

  function renderMine() {
    const a = state.account;
    replace(mine, h("h2", {}, "My DPG"), connect,
      a ? h("dl", { class: "facts" },
        h("dt", {}, "Address"), h("dd", {}, h("code", {}, a.address)),
        h("dt", {}, "DPG held"), h("dd", { "data-testid": "dpg" }, num(a.dpg)),
        h("dt", {}, "Staked"), h("dd", { "data-testid": "staked" }, num(a.staked)),
        h("dt", {}, "Earned"), h("dd", { "data-testid": "earned" }, `${num(a.earned_usdt)} USDT`),
        h("dt", {}, "Votes"), h("dd", { "data-testid": "votes" }, num(a.votes)),
        h("dt", {}, "Delegate"), h("dd", {}, a.delegate ? h("code", {}, a.delegate) : "nobody (no votes)"),
        h("dt", {}, "Reward rate, last period"), h("dd", { "data-testid": "apr" },
          `${num(a.reward_per_dpg_year)} USDT a year per staked DPG`))
        : h("p", { class: "muted" }, "Connect your wallet or give your address to see your DPG."),
      actions, txBox);
  }

  function renderProposals() {
    const rows = state.proposals.map((p) => {
      const next = nextStep(p);
      return h("tr", { "data-testid": "proposal", dataset: { id: p.id, state: p.state } },
        h("td", {}, h("code", { title: p.id }, short(p.id))),
        h("td", {}, h("div", {}, p.description), h("div", { class: "muted" }, (p.actions || []).map(actionText).join("; "))),
        h("td", { "data-testid": "proposal-state" }, p.state),
        h("td", { class: "num", "data-testid": "votes-for" }, num(p.for)),
        h("td", { class: "num", "data-testid": "votes-against" }, num(p.against)),
        h("td", { class: "num", "data-testid": "votes-abstain" }, num(p.abstain)),
        h("td", { class: "num" }, num(p.quorum)),
        h("td", { "data-testid": "countdown", dataset: next ? { label: next[0], until: String(next[1]) } : {} },
          next ? `${next[0]} ${countdown(next[1] - state.now)}` : "—"),
        h("td", {}, p.state === "Active" ? Object.entries(SUPPORT).map(([name, support]) =>
          h("button", { type: "button", "data-testid": `vote-${name.toLowerCase()}`, onclick: () =>
            act([{ to: c().governor, data: calldata("castVote(uint256,uint8)", BigInt(p.id), support),
              label: `Vote ${name}` }]) }, name)) : ""));
    });
    replace(proposals, h("h2", {}, "Proposals"),
      table(["Id", "Proposal", "State", "For", "Against", "Abstain", "Quorum", "Next", "Vote"], rows, "No proposal yet"));
  }

  function renderParams() {
    const g = state.gov;
    if (!g) { replace(params); return; }
    replace(params, h("h2", {}, "Parameters in force"),
      h("p", {}, `Governance ${g.enabled ? "decides" : "does not decide yet"}; the stakers' share of the fees: `,
        h("strong", { "data-testid": "staker-share" }, String(g.staker_share))),
      table(["Market", "Maker fee", "Taker fee", "Halted"], (g.markets || []).map((m) =>
        h("tr", { "data-testid": "market-params", dataset: { market: m.market } },
          h("td", {}, m.market), h("td", { class: "num", "data-testid": "maker-fee" }, String(m.maker_fee)),
          h("td", { class: "num", "data-testid": "taker-fee" }, String(m.taker_fee)),
          h("td", {}, m.halted ? "halted" : "")))));
    replace(history, h("h2", {}, "Changed by governance"),
      table(["Change", "Action", "Market", "Values", "Transaction", "Time"], (g.history || []).map((x) =>
        h("tr", { "data-testid": "change", dataset: { change: String(x.change_id) } },
          h("td", {}, String(x.change_id)), h("td", {}, x.action), h("td", {}, x.market || "—"),
          h("td", { "data-testid": "change-values" }, valuesText(x.values)),
          h("td", {}, x.tx_hash ? h("code", { title: x.tx_hash }, short(x.tx_hash)) : "—"),
          h("td", {}, x.time ? new Date(x.time).toISOString().slice(0, 19).replace("T", " ") : "—"))),
      "No change by governance yet"));
  }

  let closed = false;
  async function refresh() {
    try {
      const [gov, list, account] = await Promise.all([get("/api/v1/governance"), get("/api/v1/governance/proposals"),
        state.address ? get(`/api/v1/governance/account?address=${state.address}`) : Promise.resolve(null)]);
      if (closed) return;
      Object.assign(state, { gov, proposals: list, account });
      renderMine();
      renderProposals();
      renderParams();
    } catch (e) {
      if (!closed) notify(msg, errorText(e));
    }
  }

  replace(root, h("h1", {}, "Governance"),
    h("p", { class: "muted" }, "DPG holders decide the exchange's fees, listings and halts, and the stakers' share "
      + "of the fees, paid in USDT every reward period."), msg, mine, proposals, params, history);
  renderMine();
  renderProposals();
  await refresh();
  const poll = setInterval(refresh, POLL_MS);
  const tick = setInterval(() => { // only the countdowns change: the rows (and their buttons) stay
    state.now = Math.floor(Date.now() / 1000);
    for (const td of proposals.querySelectorAll("td[data-until]")) {
      td.textContent = `${td.dataset.label} ${countdown(Number(td.dataset.until) - state.now)}`;
    }
  }, 1000);
  return () => { closed = true; clearInterval(poll); clearInterval(tick); };
}
