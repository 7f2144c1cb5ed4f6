// Proof of reserves: verify my balance (my proof from the API, checked in this page against the
// root and total the registry holds on the chain, read by eth_call), verify any proof file without
// logging in, and the reserves report per asset with the history of its ratio. The hashing is
// por/verify.js (keccak-256 from @noble/hashes); nothing is trusted from the exchange but the
// proof's data, which the chain then confirms or refutes.
import { ColorType, LineSeries, createChart } from "lightweight-charts";
import { ApiError, get, markets } from "../api.js";
import { errorText, h, notify, replace, table } from "../dom.js";
import { formatUnits, group, parseUnits } from "../money.js";
import * as session from "../session.js";
import {
  ZERO_ADDRESS, decimal, fromHex, nodeHash, proofLeaf, readPublished, toHex, verifyProof,
} from "../../por/verify.js";

const COLORS = ["#f0b90b", "#26a69a", "#4c9aff", "#ef5350", "#b388ff", "#9aa4b2"];

function trim(text) {
  return String(text).includes(".") ? String(text).replace(/0+$/, "").replace(/\.$/, "") : String(text);
}

/** Base units (a decimal string) of `asset` as a grouped decimal, when its decimals are known. */
function amount(units, asset, decimals) {
  const d = decimals[asset];
  if (d === undefined || !/^[0-9]+$/.test(String(units))) return String(units);
  return `${group(trim(formatUnits(BigInt(units), d)))} ${asset}`;
}

/** A reserve ratio of the report ("1.000000") in percent, truncated to two decimals ("100.00 %"). */
function percent(ratio) {
  if (!/^[0-9]+(\.[0-9]{1,6})?$/.test(String(ratio))) return String(ratio);
  return `${group(formatUnits(parseUnits(String(ratio), 6) / 100n, 2))} %`;
}

function epochTime(epoch) {
  return `${new Date(Number(epoch) * 1000).toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

/** Each level of a proof's path: the sibling (hash, value, side) and the node and sum it leads to. */
export function pathOf(p) {
  const balance = decimal(p.balance, "balance");
  let hash = proofLeaf(p);
  let sum = balance;
  const levels = [{ level: "leaf", hash: toHex(hash), sum }];
  const index = BigInt(p.index);
  p.siblings.forEach((s, level) => {
    const sh = fromHex(s.hash, 32, `sibling ${level} hash`);
    const sv = decimal(s.value, `sibling ${level} value`);
    const left = ((index >> BigInt(level)) & 1n) === 1n; // the sibling is on the left
    hash = left ? nodeHash(sh, sv, hash, sum) : nodeHash(hash, sum, sh, sv);
    sum += sv;
    levels.push({ level, side: left ? "left" : "right", sibling: s.hash, value: sv, hash: toHex(hash), sum });
  });
  return levels;
}

async function chainIdOf(rpcUrl) {
  const res = await fetch(rpcUrl, {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_chainId", params: [] }),
  });
  const reply = await res.json();
  if (reply.error) throw new Error(`eth_chainId: ${reply.error.message}`);
  return BigInt(reply.result).toString();
}

/**
 * Check `proof` against what its registry holds on the chain at `rpcUrl`: {valid, reason?, published?}.
 * `expectRegistry` (the exchange's registry, when known): a proof for another registry fails.
 */
export async function checkOnChain(proof, rpcUrl, expectRegistry) {
  if (proof === null || typeof proof !== "object") return { valid: false, reason: "a proof is a JSON object" };
  const offline = verifyProof(proof); // the path must at least lead to the stated root and total
  if (!offline.valid) return offline;
  if (expectRegistry && String(proof.registry).toLowerCase() !== expectRegistry.toLowerCase()) {
    return { valid: false, reason: `the proof is for the registry ${proof.registry}, not the exchange's ${expectRegistry}` };
  }
  if (!rpcUrl) return { valid: false, reason: "no JSON-RPC URL of the registry's chain to read the root from" };
  let chainId, published;
  try {
    chainId = await chainIdOf(rpcUrl);
    if (chainId !== String(proof.chainId)) {
      return { valid: false, reason: `the proof is for chain ${proof.chainId}; ${rpcUrl} is chain ${chainId}` };
    }
    published = await readPublished(rpcUrl, proof.registry, proof.epoch, proof.asset);
  } catch (e) {
    return { valid: false, unreachable: true, reason: `cannot read the registry at ${rpcUrl}: ${e.message} (this page `
      + "may reach only the exchange and the RPC URL it gives for the registry's chain; elsewhere use dpg por verify --rpc)" };
  }
  if (!published.depth) {
    return { valid: false, reason: `the registry ${proof.registry} has nothing published for epoch ${proof.epoch} and ${proof.asset}`, published };
  }
  return { ...verifyProof(proof, published), published };
}

/** A version 2 leaf's exit address and counters; a version 1 proof has neither. */
function exitFacts(proof, decimals) {
  if (proof.version === 1) {
    return [h("dt", {}, "Exit address"), h("dd", { "data-testid": "proof-exit" }, "none: a version 1 proof (before exit addresses)")];
  }
  const none = String(proof.exitAddress).toLowerCase() === ZERO_ADDRESS;
  return [
    h("dt", {}, "Exit address"),
    h("dd", { "data-testid": "proof-exit" }, none
      ? "none registered: this balance can be proven but not claimed through the Vault's escape hatch (register one under Wallet)"
      : [h("code", {}, String(proof.exitAddress)), " may claim this balance from the Vault if the exchange stops serving withdrawals"]),
    h("dt", {}, "Deposited, withdrawn (home Vault)"),
    h("dd", { "data-testid": "proof-counters" }, `${amount(proof.deposited, proof.asset, decimals)}, ${amount(proof.withdrawn, proof.asset, decimals)}`),
  ];
}

function resultEl(proof, r, decimals) {
  const ok = r.valid;
  let levels = null;
  try { levels = pathOf(proof); } catch { levels = null; }
  return h("div", { class: "result", "data-testid": "proof-result", dataset: { valid: String(ok) } },
    h("p", { class: `verdict ${ok ? "good" : "bad"}`, "data-testid": "verdict" },
      ok ? `Valid: ${amount(proof.balance, proof.asset, decimals)} of account ${proof.accountId} is in the tree whose root the registry holds`
        : `Not valid: ${r.reason}`),
    h("dl", { class: "facts" },
      h("dt", {}, "Asset, epoch"), h("dd", {}, `${proof.asset}, epoch ${proof.epoch}`),
      h("dt", {}, "Balance in the proof"), h("dd", { "data-testid": "proof-balance" }, amount(proof.balance, proof.asset, decimals)),
      h("dt", {}, "Registry"), h("dd", {}, h("code", {}, String(proof.registry)), ` on chain ${proof.chainId}`),
      exitFacts(proof, decimals),
      h("dt", {}, "Root in the proof"), h("dd", {}, h("code", {}, String(proof.root)), " total ", amount(proof.total, proof.asset, decimals)),
      r.published ? [h("dt", {}, "Root on the chain"), h("dd", { "data-testid": "root-on-chain" }, h("code", {}, r.published.root),
        " total ", amount(r.published.total, proof.asset, decimals), ` depth ${r.published.depth}`)] : null),
    levels ? h("div", { class: "path", tabindex: 0, role: "region", "aria-label": "The path from your leaf to the root" },
      h("h2", {}, "The path from your leaf to the root"),
      table(["Level", "Sibling side", "Sibling hash", "Sibling value", "Running sum", "Node hash"], levels.map((l) =>
        h("tr", { "data-testid": "path-level" }, h("td", {}, String(l.level)), h("td", {}, l.side || "—"),
          h("td", {}, l.sibling ? h("code", { title: l.sibling }, `${l.sibling.slice(0, 10)}…${l.sibling.slice(-6)}`) : "your leaf"),
          h("td", { class: "num" }, l.value === undefined ? "" : amount(l.value.toString(), proof.asset, decimals)),
          h("td", { class: "num" }, amount(l.sum.toString(), proof.asset, decimals)),
          h("td", {}, h("code", { title: l.hash }, `${l.hash.slice(0, 10)}…${l.hash.slice(-6)}`)))))) : null);
}

export async function mount(root) {
  const signedIn = !!session.current();
  const cleanup = [];
  const msg = h("p", { class: "notice", hidden: true, role: "alert" });
  const mine = h("div", { "data-testid": "verify-mine" });
  const file = h("div", { "data-testid": "verify-file" });
  const reportBox = h("div", { "data-testid": "reserves" });
  const chartEl = h("div", { class: "ratio-chart", "data-testid": "ratio-chart" });
  const rpcInput = h("input", { name: "rpc", placeholder: "https://… (JSON-RPC of the registry's chain)", autocomplete: "off", spellcheck: "false" });
  const registryText = h("span", { "data-testid": "registry" }, "…");
  root.append(h("div", { class: "proof", "data-testid": "proof" },
    h("section", { class: "panel p-intro" }, h("h1", {}, "Proof of reserves"),
      h("p", {}, "Every epoch DPG publishes, per asset, the root and total of a Merkle sum tree of all balances in a "
        + "registry contract on the chain. Check that your balance is in it, here in your browser against the chain, "
        + "or with ", h("code", {}, "dpg por verify"), ". ", h("a", { href: "/por", target: "_blank" }, "Plain report"), "."),
      h("p", {}, h("a", { href: "/proof/exit", "data-testid": "exit-link" }, "Your way out"),
        ": your exit address, a forced withdrawal, and a claim if DPG ever stops serving you."),
      h("p", {}, "Registry: ", registryText),
      h("label", {}, "Chain's JSON-RPC URL", rpcInput), msg),
    h("section", { class: "panel p-mine" }, h("h2", {}, "Verify my balance"), mine),
    h("section", { class: "panel p-file" }, h("h2", {}, "Verify a proof file"), file),
    h("section", { class: "panel p-report" }, h("h2", {}, "Reserves"), reportBox, h("h2", {}, "Reserve ratio by epoch (%)"), chartEl)));

  let decimals = {};
  let registry = null;
  let epochs = [];
  try {
    [{ assets: decimals }, epochs] = await Promise.all([markets(), get("/api/v1/por/epochs?limit=60")]);
  } catch (e) {
    notify(msg, errorText(e));
  }
  try {
    registry = await get("/api/v1/por/registry");
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 404)) notify(msg, errorText(e));
    // not published on a chain by dpg up (yet): the epochs tell the registry; the user gives the RPC URL
    const any = epochs.flatMap((x) => x.published)[0];
    if (any) registry = { chainId: any.chainId, registry: any.registry, rpcUrl: null };
  }
  if (registry) {
    replace(registryText, h("code", {}, registry.registry), ` on chain ${registry.chainId}${registry.chain ? ` (${registry.chain})` : ""}`);
    if (registry.rpcUrl) rpcInput.value = registry.rpcUrl;
  } else {
    replace(registryText, "nothing has been published yet.");
  }
  if (!rpcInput.value) rpcInput.placeholder = "this exchange gives no RPC URL: type one of the registry's chain";
  const rpc = () => rpcInput.value.trim();

  // ---------------------------------------------------------------- verify my balance
  const published = epochs.filter((e) => e.published.length);
  if (!signedIn) {
    replace(mine, h("p", { class: "muted" }, h("a", { href: "/account/login" }, "Log in"), " to fetch and verify the proof of your balance."));
  } else if (!published.length) {
    replace(mine, h("p", { class: "muted" }, "No epoch has been published yet."));
  } else {
    const epochSel = h("select", { name: "epoch" }, published.map((e) => h("option", { value: e.epoch },
      `${e.epoch} (${epochTime(e.epoch)})`)));
    const assetSel = h("select", { name: "asset" });
    const fillAssets = () => {
      const e = published.find((x) => x.epoch === epochSel.value);
      const keep = assetSel.value;
      replace(assetSel, e.published.map((p) => h("option", { value: p.asset }, p.asset)));
      if (e.published.some((p) => p.asset === keep)) assetSel.value = keep;
    };
    epochSel.addEventListener("change", fillAssets);
    fillAssets();
    const out = h("div");
    const go = h("button", { type: "submit", class: "btn primary", "data-testid": "verify-mine-go" }, "Verify my balance");
    const form = h("form", { class: "row gap end" }, h("label", {}, "Asset", assetSel), h("label", {}, "Epoch", epochSel), go);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      go.disabled = true;
      replace(out, h("p", { class: "muted" }, "Fetching your proof and reading the registry…"));
      try {
        const proof = await get(`/api/v1/por/proof?asset=${encodeURIComponent(assetSel.value)}&epoch=${epochSel.value}`);
        const r = await checkOnChain(proof, rpc(), registry?.registry);
        const blob = URL.createObjectURL(new Blob([JSON.stringify(proof, null, 2)], { type: "application/json" }));
        cleanup.push(() => URL.revokeObjectURL(blob));
        replace(out, resultEl(proof, r, decimals),
          h("p", {}, h("a", { href: blob, download: `dpg-proof-${proof.asset}-${proof.epoch}.json`, "data-testid": "proof-download" },
            "Download this proof"), " to check it again, anywhere, with any verifier."));
      } catch (err) {
        replace(out, h("p", { class: "notice" }, errorText(err)));
      } finally {
        go.disabled = false;
      }
    });
    replace(mine, form, out);
  }

  // ---------------------------------------------------------------- verify a proof file
  const upload = h("input", { type: "file", name: "proof-file", accept: "application/json,.json" });
  const paste = h("textarea", { name: "proof-json", rows: 5, spellcheck: "false", placeholder: "{\"version\": 1, …}" });
  const fileOut = h("div");
  const check = h("button", { type: "submit", class: "btn primary", "data-testid": "verify-file-go" }, "Verify the proof");
  upload.addEventListener("change", async () => {
    const f = upload.files?.[0];
    if (f) paste.value = await f.text();
  });
  const fileForm = h("form", { class: "stack" },
    h("p", { class: "muted" }, "No log-in needed: the proof is checked against its own registry and chain."),
    h("label", {}, "Proof file", upload), h("label", {}, "…or paste the proof's JSON", paste), check);
  fileForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    let proof;
    try {
      const f = upload.files?.[0];
      const text = paste.value.trim() || (f ? await f.text() : "");
      if (!text) return replace(fileOut, h("p", { class: "notice" }, "Choose a proof file or paste one."));
      proof = JSON.parse(text);
    } catch {
      return replace(fileOut, h("p", { class: "notice", "data-testid": "proof-result", "data-valid": "false" }, "Not valid: the proof is not JSON"));
    }
    check.disabled = true;
    try {
      replace(fileOut, resultEl(proof, await checkOnChain(proof, rpc(), null), decimals));
    } finally {
      check.disabled = false;
    }
  });
  replace(file, fileForm, fileOut);

  // ---------------------------------------------------------------- the reserves report and its history
  const reported = epochs.filter((e) => e.reportOk !== null);
  if (!reported.length) {
    replace(reportBox, h("p", { class: "muted" }, "No reserves report has been published yet."));
    chartEl.hidden = true;
  } else {
    const reports = (await Promise.all(reported.slice(0, 30).map((e) => get(`/api/v1/por/report/${e.epoch}`).catch(() => null))))
      .filter(Boolean);
    const latest = reports[0];
    const head = ["Asset", "Liabilities", "Reserves by chain (block)", "Reserves", "Ratio", "Accounts"];
    const cell = (i, attrs, ...content) => h("td", { ...attrs, "data-label": head[i] }, ...content);
    const offChain = latest.unpublished || [];
    replace(reportBox,
      h("p", {}, `Epoch ${latest.epoch} (${epochTime(latest.epoch)}, journal seq ${latest.seq}): `,
        h("strong", { class: latest.ok ? "ok" : "bad", "data-testid": "report-ok" }, latest.ok ? "every asset covered" : "NOT every asset covered")),
      h("table", { class: "grid reserves" },
        h("caption", { class: "sr-only" }, `Reserves and liabilities per asset at epoch ${latest.epoch}`),
        h("thead", {}, h("tr", {}, head.map((c, i) => h("th", { scope: "col", class: [1, 3, 4, 5].includes(i) ? "num" : null }, c)))),
        h("tbody", {},
          latest.assets.map((a) => h("tr", { dataset: { asset: a.asset } },
            cell(0, {}, a.asset), cell(1, { class: "num" }, amount(a.liabilities, a.asset, decimals)),
            cell(2, {}, h("div", {}, a.reserves.map((c) => h("div", {}, `${c.chain}: ${amount(c.holdings, a.asset, decimals)} (${c.block})`)))),
            cell(3, { class: "num" }, amount(a.reservesTotal, a.asset, decimals)),
            cell(4, { class: "num", "data-testid": `ratio-${a.asset}`, "data-ratio": a.ratio ?? "" },
              a.ratio === null || a.ratio === undefined ? "— (no liabilities)" : percent(a.ratio)),
            cell(5, { class: "num" }, String(a.accounts ?? "")))),
          offChain.map((u) => h("tr", { dataset: { asset: u.asset }, "data-testid": `offchain-${u.asset}` },
            cell(0, {}, u.asset), cell(1, { class: "num" }, amount(u.liabilities, u.asset, decimals)),
            cell(2, { class: "muted wrap" }, "off chain: no token on the registry's chain to prove"),
            cell(3, { class: "num" }, "—"), cell(4, { class: "num" }, "—"), cell(5, { class: "num" }, "—"))))),
      offChain.length ? h("p", { class: "muted" }, `${offChain.map((u) => u.asset).join(", ")}: held off chain (a bank `
        + "balance for a fiat currency), so not in the proof: the registry proves only what a vault holds on a chain.") : null);
    const chart = createChart(chartEl, {
      autoSize: true,
      layout: { background: { type: ColorType.Solid, color: "#12161c" }, textColor: "#9aa4b2", attributionLogo: true },
      grid: { vertLines: { color: "#1d232c" }, horzLines: { color: "#1d232c" } },
      timeScale: { timeVisible: true, borderColor: "#2a313c" },
      rightPriceScale: { borderColor: "#2a313c" },
    });
    cleanup.push(() => chart.remove());
    const byAsset = new Map();
    for (const r of [...reports].reverse()) {
      for (const a of r.assets) {
        const ratio = Number(a.ratio) * 100; // display only, in percent
        if (!Number.isFinite(ratio)) continue;
        if (!byAsset.has(a.asset)) byAsset.set(a.asset, []);
        byAsset.get(a.asset).push({ time: Number(r.epoch), value: ratio });
      }
    }
    const legend = h("div", { class: "legend" });
    [...byAsset.entries()].forEach(([asset, points], i) => {
      const color = COLORS[i % COLORS.length];
      chart.addSeries(LineSeries, { color, lineWidth: 2, title: asset, priceFormat: { type: "percent", precision: 2, minMove: 0.01 } })
        .setData(points);
      legend.append(h("span", { style: `color:${color}` }, `— ${asset}`));
    });
    chart.timeScale().fitContent();
    chartEl.after(legend);
  }
  return () => { for (const f of cleanup) f(); };
}
