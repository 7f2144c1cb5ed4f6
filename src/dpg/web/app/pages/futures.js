// The futures page: a perpetual's mark, index (and whether it is stale), funding rate with a
// countdown to the next funding; its order book (a click on a level takes the price), recent trades
// and candlestick chart, the same panels as the trade page's; leverage and margin mode; the order form (limit, market,
// stop-market, take-profit on the mark price, reduce-only); the positions table (size, entry, mark,
// the server's liquidation price, unrealized PnL and ROE, isolated margin added or removed, close at
// market); the open orders of the perpetual (stop-market and take-profit ones waiting on the mark),
// each cancellable, and cancel all; funding history, the latest liquidations and the insurance fund.
// Live over the feed;
// every amount is a decimal string or a BigInt of base units, never a float.
import { get, markets as loadMarkets, post } from "../api.js";
import { BookPanel } from "../book.js";
import { ChartPanel } from "../chart.js";
import { h, notify, replace, table, time, toast } from "../dom.js";
import { feed } from "../feed.js";
import { MoneyError, decimalsOf, formatUnits, group, parseUnits, shown } from "../money.js";
import { ORDER_HEAD, cancelAllButton, orderRow } from "../orders.js";
import { go } from "../router.js";
import * as session from "../session.js";
import { TapePanel } from "../tape.js";

const TYPES = { limit: "Limit", market: "Market", stop_market: "Stop-market", take_profit_market: "Take-profit" };
const CAUSES = { fee: "fee share", liquidation: "liquidation fees", insurance: "losses covered",
  realized: "taken-over positions", funding: "funding" };
const MARK_REFRESH_MS = 250; // positions re-read at most this often as the mark moves
const NOT_DECIMAL = /[^0-9.,\s]/;

/** A signed decimal string with `places` decimals, rounded down in size, with separators. */
function signed(text, places) {
  return text === null || text === undefined ? "—" : shown(text, places);
}

/** A funding rate ("0.00010000", a fraction) as a percent with 4 places ("0.0100%"), exact. */
export function ratePercent(rate) {
  const s = String(rate);
  const neg = s.startsWith("-");
  const units = parseUnits(neg ? s.slice(1) : s, 8); // 1e-8 of the rate = 1e-6 of a percent
  const pct = formatUnits(units / 100n, 4); // rounded down to 4 places of a percent
  return `${neg && units ? "-" : ""}${pct}%`;
}

/** ms as "hh:mm:ss" (never negative). */
export function countdown(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const pad = (n) => String(n).padStart(2, "0");
  return `${pad(Math.floor(s / 3600))}:${pad(Math.floor(s / 60) % 60)}:${pad(s % 60)}`;
}

function decimalInput(attrs) {
  const input = h("input", { inputmode: "decimal", autocomplete: "off", spellcheck: "false", ...attrs });
  input.addEventListener("beforeinput", (e) => {
    const text = e.data ?? e.dataTransfer?.getData("text") ?? "";
    if (NOT_DECIMAL.test(text)) e.preventDefault();
  });
  return input;
}

/** A perpetual's arithmetic from an entry of GET /api/v1/futures/markets. */
class PerpMath {
  constructor(market, assetDecimals) {
    this.symbol = market.market;
    this.base = market.base;
    this.quote = market.quote;
    this.pd = decimalsOf(market.tick_size);
    this.qd = decimalsOf(market.lot_size);
    this.quoteDecimals = assetDecimals[market.quote];
    this.tick = parseUnits(market.tick_size, this.pd);
    this.lot = parseUnits(market.lot_size, this.qd);
    this.maxLeverage = Math.max(...market.tiers.map((t) => t.max_leverage));
  }
  price(text) { return parseUnits(text, this.pd); }
  qty(text) { return parseUnits(text, this.qd); }
  fmtPrice(units) { return formatUnits(units, this.pd); }
  fmtQty(units) { return formatUnits(units, this.qd); }
}

export async function mount(root, params) {
  const [perps, { assets }] = await Promise.all([get("/api/v1/futures/markets"), loadMarkets()]);
  const wanted = (params.market || "").toUpperCase();
  const market = perps.find((x) => x.market === wanted) || perps[0];
  if (!market) { root.append(h("p", { class: "panel" }, "No perpetual is listed.")); return null; }
  const m = new PerpMath(market, assets);
  const qp = Math.min(m.quoteDecimals, m.pd); // quote amounts shown at the tick's places (cents for USDT)
  const signedIn = () => !!session.current();
  const cleanup = [];

  // ---------------------------------------------------------------- layout
  const select = h("select", { name: "market", "aria-label": "Perpetual" },
    perps.map((x) => h("option", { value: x.market, selected: x.market === m.symbol }, x.market)));
  select.addEventListener("change", () => go(`/futures/${select.value}`));
  const stats = h("div", { class: "stats", "data-testid": "perp-stats" });
  const settingsEl = h("div", { class: "fsettings", "data-testid": "settings" });
  const formBox = h("div", { id: "order-form" });
  const positionsEl = h("div", { class: "cards", "data-testid": "positions" });
  const ordersEl = h("div", { class: "cards", "data-testid": "open-orders" });
  const fundingEl = h("div", { class: "cards", "data-testid": "funding" });
  const liqEl = h("div", { class: "cards", "data-testid": "liquidations" });
  const insuranceEl = h("div", { "data-testid": "insurance" });
  const insHistoryEl = h("div", { class: "cards", "data-testid": "insurance-history" });
  const walletEl = h("p", { class: "avail", "data-testid": "margin-available" });
  const bookPanel = new BookPanel(m, { onPrice: (p) => takePrice(p) });
  const tapePanel = new TapePanel(m, { onTrade: (t) => bookPanel.setLast(t.price) });
  const chartPanel = new ChartPanel(m.symbol, m.pd);

  root.append(h("section", { class: "futures", "data-testid": "futures" },
    h("h1", { class: "sr-only" }, `Trade ${m.symbol} perpetual`),
    h("div", { class: "fbar panel" }, select, stats),
    bookPanel.el, chartPanel.el, tapePanel.el,
    h("div", { class: "fform panel" }, h("h2", {}, "Leverage and margin"), settingsEl, formBox, walletEl),
    h("div", { class: "fpos panel" }, h("h2", {}, "Positions"), positionsEl),
    h("div", { class: "ford panel" }, h("h2", {}, "Open orders"), ordersEl),
    h("div", { class: "ffund panel" }, h("h2", {}, "Funding history"), fundingEl),
    h("div", { class: "fliq panel" }, h("h2", {}, "Liquidations"), liqEl,
      h("h2", { class: "gap" }, "Insurance fund"), insuranceEl,
      h("h3", { class: "gap" }, "Last 24 hours"), insHistoryEl)));

  // ---------------------------------------------------------------- mark, index, funding
  let perp = { ...market };
  function showStats() {
    const stale = !!perp.index_stale;
    replace(stats,
      h("span", {}, h("small", {}, "Mark "), h("b", { class: "last", "data-testid": "mark" },
        perp.mark_price ? group(perp.mark_price) : "—")),
      h("span", {}, h("small", {}, "Index "), h("b", { "data-testid": "index" }, perp.index_price ? group(perp.index_price) : "—"),
        stale ? h("span", { class: "badge off", "data-testid": "index-stale", title: "No valid index source: only orders that reduce a position are taken, nothing is liquidated" }, " stale") : null),
      h("span", {}, h("small", {}, "Funding "), h("b", { "data-testid": "funding-rate" }, ratePercent(perp.funding_rate))),
      h("span", {}, h("small", {}, "Next funding in "), h("b", { "data-testid": "countdown" },
        perp.next_funding_time ? countdown(perp.next_funding_time - Date.now()) : "—")));
  }
  const tick = setInterval(() => {
    const el = stats.querySelector("[data-testid=countdown]");
    if (el && perp.next_funding_time) el.textContent = countdown(perp.next_funding_time - Date.now());
  }, 1000);
  cleanup.push(() => clearInterval(tick));

  // ---------------------------------------------------------------- leverage and margin mode
  let settings = { leverage: 20, margin_mode: "cross" };
  const levInput = h("input", { type: "number", name: "leverage", min: "1", max: String(m.maxLeverage), step: "1",
    "aria-label": `Leverage (1 to ${m.maxLeverage})` });
  const levMsg = h("div", { class: "notice", hidden: true, role: "alert" });
  const modeBtns = ["cross", "isolated"].map((mode) => h("button", {
    type: "button", class: "btn small", "data-mode": mode, "aria-pressed": "false",
    onclick: () => setMode(mode),
  }, mode === "cross" ? "Cross" : "Isolated"));
  const levBtn = h("button", { type: "submit", class: "btn small" }, "Set");
  const levForm = h("form", { class: "levform", "data-testid": "leverage-form" },
    h("label", {}, `Leverage (1-${m.maxLeverage}x)`, h("span", { class: "with-unit" }, levInput, levBtn)),
    h("div", { class: "seg", role: "group", "aria-label": "Margin mode" }, modeBtns), levMsg);
  replace(settingsEl, signedIn() ? levForm : h("p", { class: "muted login-cta" },
    h("a", { href: "/account/login" }, "Log in"), " to trade perpetuals."));

  function showSettings() {
    levInput.value = String(settings.leverage);
    for (const b of modeBtns) {
      const on = b.dataset.mode === settings.margin_mode;
      b.classList.toggle("active", on);
      b.setAttribute("aria-pressed", String(on));
    }
  }
  async function loadSettings() {
    if (!signedIn()) return;
    const all = await get("/api/v1/futures/settings");
    settings = all.find((s) => s.market === m.symbol) || settings;
    showSettings();
  }
  levForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    notify(levMsg, "");
    const lev = Number(levInput.value);
    if (!Number.isInteger(lev) || lev < 1 || lev > m.maxLeverage) {
      return notify(levMsg, `Leverage goes from 1 to ${m.maxLeverage}x`);
    }
    try {
      settings = await post("/api/v1/futures/leverage", { market: m.symbol, leverage: lev });
      showSettings();
      toast(`Leverage ${settings.leverage}x on ${m.symbol}`, "ok");
      refreshPositions();
    } catch (err) { notify(levMsg, futuresError(err)); }
  });
  async function setMode(mode) {
    notify(levMsg, "");
    try {
      settings = await post("/api/v1/futures/margin-mode", { market: m.symbol, mode });
      showSettings();
      toast(`${mode === "cross" ? "Cross" : "Isolated"} margin on ${m.symbol}`, "ok");
    } catch (err) { notify(levMsg, futuresError(err)); }
  }

  // ---------------------------------------------------------------- order form
  let side = "buy";
  let type = "limit";
  const sideBtns = ["buy", "sell"].map((s) => h("button", { type: "button", class: `side ${s}`, "data-side": s,
    "aria-pressed": "false", onclick: () => pickSide(s) }, s === "buy" ? "Long" : "Short"));
  const typeBtns = Object.entries(TYPES).map(([t, label]) => h("button", { type: "button", class: "btn small",
    "data-type": t, "aria-pressed": "false", onclick: () => pickType(t) }, label));
  const price = decimalInput({ name: "price", "aria-label": `Price (${m.quote})` });
  const stop = decimalInput({ name: "stop", "aria-label": `Trigger mark price (${m.quote})` });
  const amount = decimalInput({ name: "amount", "aria-label": `Amount (${m.base})` });
  const reduce = h("input", { type: "checkbox", name: "reduce_only" });
  const priceRow = h("label", {}, `Price (${m.quote})`, price);
  const stopRow = h("label", {}, `Trigger at mark price (${m.quote})`, stop);
  const msg = h("div", { class: "notice", hidden: true, role: "alert", "data-testid": "order-error" });
  const submit = h("button", { type: "submit", class: "btn wide buy" }, "Long");
  const orderForm = h("form", { class: "order", "data-testid": "futures-order-form", novalidate: true },
    h("div", { class: "sides" }, sideBtns),
    h("div", { class: "seg", role: "group", "aria-label": "Order type" }, typeBtns),
    stopRow, priceRow, h("label", {}, `Amount (${m.base})`, amount),
    h("label", { class: "check" }, reduce, "Reduce-only"), msg, submit);
  replace(formBox, signedIn() ? orderForm : null);

  function pickSide(s) {
    side = s;
    for (const b of sideBtns) {
      b.classList.toggle("active", b.dataset.side === s);
      b.setAttribute("aria-pressed", String(b.dataset.side === s));
    }
    submit.textContent = `${s === "buy" ? "Long" : "Short"} ${m.base}`;
    submit.className = `btn wide ${s}`;
  }
  function pickType(t) {
    type = t;
    for (const b of typeBtns) {
      b.classList.toggle("active", b.dataset.type === t);
      b.setAttribute("aria-pressed", String(b.dataset.type === t));
    }
    priceRow.hidden = t !== "limit";
    stopRow.hidden = t === "limit" || t === "market";
  }

  function units(input, parse, what) {
    try {
      const u = parse(input.value);
      if (u <= 0n) throw new MoneyError("not positive");
      return u;
    } catch (e) {
      if (!(e instanceof MoneyError)) throw e;
      input.focus();
      throw new Error(/decimals/.test(e.message) ? `${what}: ${e.message}` : `Enter ${what} above 0`);
    }
  }
  function request() {
    const body = { market: m.symbol, side, type };
    const qty = units(amount, (t) => m.qty(t), "an amount");
    if (qty % m.lot) throw new Error(`The amount goes in steps of ${m.fmtQty(m.lot)} ${m.base}`);
    body.quantity = m.fmtQty(qty);
    if (type === "limit") {
      const px = units(price, (t) => m.price(t), "a price");
      if (px % m.tick) throw new Error(`The price goes in steps of ${m.fmtPrice(m.tick)} ${m.quote}`);
      body.price = m.fmtPrice(px);
    } else if (type !== "market") {
      const sp = units(stop, (t) => m.price(t), "a trigger price");
      if (sp % m.tick) throw new Error(`The trigger price goes in steps of ${m.fmtPrice(m.tick)} ${m.quote}`);
      body.stop_price = m.fmtPrice(sp);
    }
    if (reduce.checked) body.reduce_only = true;
    return body;
  }
  orderForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    notify(msg, "");
    let body;
    try { body = request(); } catch (err) { return notify(msg, err.message); }
    submit.disabled = true;
    try {
      const o = await post("/api/v1/orders", body);
      orderForm.dataset.lastOrder = JSON.stringify(o);
      const what = `${o.side === "buy" ? "Long" : "Short"} ${TYPES[o.type] || o.type}`;
      toast(o.status === "filled" ? `${what}: ${group(o.filled)} ${m.base} filled`
        : `${what} order ${o.status === "open" ? "placed" : o.status}: ${group(o.quantity)} ${m.base}`,
        o.status === "canceled" || o.status === "expired" ? "info" : "ok");
      amount.value = "";
      refreshPositions();
      refreshOrders();
    } catch (err) {
      notify(msg, futuresError(err));
    } finally {
      submit.disabled = false;
    }
  });
  pickSide("buy");
  pickType("limit");
  /** A price taken from the book: a limit order at it. */
  function takePrice(p) {
    if (!signedIn()) return;
    pickType("limit");
    price.value = p;
    notify(msg, "");
    amount.focus();
  }

  // ---------------------------------------------------------------- positions
  let positions = [];
  function pnlCell(text, pct) {
    const neg = String(text).startsWith("-");
    return h("td", { class: `num ${neg ? "down" : "up"}`, "data-testid": "pnl" },
      `${signed(text, qp)} ${m.quote}`, h("small", { "data-testid": "roe" }, ` (${pct}%)`));
  }
  function marginCell(p) {
    const cell = h("td", { class: "num", "data-testid": "margin" }, `${signed(p.margin, qp)} ${m.quote}`);
    if (p.margin_mode !== "isolated") return cell;
    const input = decimalInput({ name: "margin_amount", "aria-label": `Margin to add or remove (${m.quote})`, size: "7",
      placeholder: m.quote });
    const adjust = async (sign) => {
      let u;
      try { u = units(input, (t) => parseUnits(t, m.quoteDecimals), "an amount"); } catch (err) { return toast(err.message, "error"); }
      try {
        const r = await post("/api/v1/futures/margin", { market: p.market, amount: `${sign}${formatUnits(u, m.quoteDecimals)}` });
        toast(`Margin ${sign === "+" ? "added" : "removed"}: ${p.market} margin is now ${signed(r.margin, qp)} ${m.quote}`, "ok");
        refreshPositions();
      } catch (err) { toast(futuresError(err), "error"); }
    };
    cell.append(h("span", { class: "madj" }, input,
      h("button", { type: "button", class: "btn small", "data-testid": "add-margin", onclick: () => adjust("+") }, "Add"),
      h("button", { type: "button", class: "btn small", "data-testid": "remove-margin", onclick: () => adjust("-") }, "Remove")));
    return cell;
  }
  async function close(p) {
    try {
      const o = await post("/api/v1/orders", { market: p.market, side: p.side === "long" ? "sell" : "buy", type: "market",
        close_position: true });
      toast(`${p.market} position closed: ${group(o.filled)} ${m.base} at market`, o.status === "filled" ? "ok" : "info");
      refreshPositions();
    } catch (err) { toast(futuresError(err), "error"); }
  }
  function renderPositions() {
    if (!signedIn()) return replace(positionsEl, h("p", { class: "muted" }, "Log in to see your positions."));
    replace(positionsEl, table(["Market", "Size", "Entry", "Mark", "Liq. price", "PnL (ROE)", "Margin", ""],
      positions.map((p) => h("tr", { dataset: { market: p.market, side: p.side }, "data-testid": "position" },
        h("td", {}, `${p.market} `, h("small", {}, `${p.leverage}x ${p.margin_mode}`)),
        h("td", { class: `num ${p.side === "long" ? "up" : "down"}`, "data-testid": "size" }, `${signed(p.size, m.qd)} ${m.base}`),
        h("td", { class: "num", "data-testid": "entry" }, signed(p.entry_price, m.pd)),
        h("td", { class: "num", "data-testid": "pos-mark" }, signed(p.mark_price, m.pd)),
        h("td", { class: "num", "data-testid": "liq" }, p.liquidation_price ? group(p.liquidation_price) : "—"),
        pnlCell(p.unrealized_pnl, p.roe),
        marginCell(p),
        h("td", { class: "act" }, h("button", { type: "button", class: "btn small danger", "data-testid": "close",
          onclick: () => close(p) }, "Close at market")))),
      "No open position"));
  }
  let reading = null;
  let again = false;
  function refreshPositions() {
    if (!signedIn()) return;
    if (reading) { again = true; return; }
    reading = setTimeout(async () => {
      try {
        positions = await get("/api/v1/futures/positions");
        renderPositions();
        await showWallet();
      } catch (err) { toast(futuresError(err), "error"); }
      reading = null;
      if (again) { again = false; refreshPositions(); }
    }, MARK_REFRESH_MS);
  }
  async function showWallet() {
    const rows = await get("/api/v1/balances");
    const b = rows.find((x) => x.asset === m.quote);
    walletEl.textContent = `Available margin: ${shown(b ? b.available : "0", qp)} ${m.quote}`;
  }

  // ---------------------------------------------------------------- open orders
  let openOrders = [];
  const orderOpts = { errorText: (err) => futuresError(err), changed: () => refreshOrders() };
  function renderOrders() {
    if (!signedIn()) return replace(ordersEl, h("p", { class: "muted" }, "Log in to see your orders."));
    replace(ordersEl, h("div", { class: "tabtools" }, cancelAllButton(openOrders, m.symbol, orderOpts)),
      table([...ORDER_HEAD, h("span", { class: "sr-only" }, "Cancel")],
        openOrders.map((o) => orderRow(o, m, { ...orderOpts, open: true })), `No open orders on ${m.symbol}`));
  }
  let ordering = null;
  function refreshOrders() {
    if (!signedIn() || ordering) return;
    ordering = setTimeout(async () => {
      ordering = null;
      try {
        openOrders = await get(`/api/v1/orders/open?market=${m.symbol}`);
        renderOrders();
      } catch (err) { toast(futuresError(err), "error"); }
    }, 50);
  }
  cleanup.push(() => clearTimeout(ordering));

  // ---------------------------------------------------------------- funding, liquidations, insurance
  let fundings = [];
  function renderFunding() {
    replace(fundingEl, table(["Time", "Rate", "Mark", "Paid", "Received"], fundings.slice(0, 20).map((f) => h("tr", {},
      h("td", {}, time(f.time)), h("td", { class: "num" }, ratePercent(f.rate)), h("td", { class: "num" }, group(f.mark_price)),
      h("td", { class: "num" }, signed(f.paid, qp)), h("td", { class: "num" }, signed(f.received, qp)))), "No funding yet"));
  }
  let liquidations = [];
  function renderLiquidations() {
    replace(liqEl, table(["Time", "Size", "Bankruptcy price", "Closed by"], liquidations.slice(0, 20).map((l) =>
      h("tr", { "data-testid": "liquidation" }, h("td", {}, time(l.time)),
        h("td", { class: "num" }, `${signed(l.size, m.qd)} ${m.base}`), h("td", { class: "num" }, group(l.bankruptcy_price)),
        h("td", {}, { book: "the book", insurance_fund: "insurance fund", adl: "auto-deleverage" }[l.via] || l.via))),
    "No liquidation yet"));
  }
  async function loadInsurance() {
    const rows = await get("/api/v1/futures/insurance");
    const mine = rows.filter((r) => r.asset === m.quote);
    replace(insuranceEl, mine.map((r) => h("p", { "data-testid": `insurance-${r.asset}` },
      `${shown(r.balance, qp)} ${r.asset}`)));
    await loadInsuranceHistory();
  }
  /** The fund's hours that moved, newest first: each hour's net change by cause and the balance at
   * its end, exact (every decimal of the asset). */
  async function loadInsuranceHistory() {
    const r = await get(`/api/v1/futures/insurance/history?asset=${m.quote}&interval=1h&limit=24`);
    const moved = r.buckets.filter((b) => Object.keys(b.by_cause).length).reverse();
    replace(insHistoryEl, table(["Hour to", "Change", "By cause", `Balance (${m.quote})`], moved.map((b) =>
      h("tr", { "data-testid": "insurance-bucket" }, h("td", {}, time(b.end)),
        h("td", { class: `num ${b.change.startsWith("-") ? "down" : "up"}`, "data-testid": "ins-change" }, group(b.change)),
        h("td", { "data-testid": "ins-causes" }, Object.entries(b.by_cause).map(([c, d]) =>
          h("div", { dataset: { cause: c } }, `${CAUSES[c] || c} ${group(d)}`))),
        h("td", { class: "num", "data-testid": "ins-balance" }, group(b.balance)))),
    "No movement in the last 24 hours"));
  }

  // ---------------------------------------------------------------- live data
  cleanup.push(chartPanel.start());
  cleanup.push(bookPanel.subscribe());
  cleanup.push(tapePanel.subscribe());
  cleanup.push(feed.subscribe(`mark:${m.symbol}`, (msg) => {
    perp = { ...perp, ...msg.data };
    showStats();
    if (positions.some((p) => p.market === m.symbol)) refreshPositions();
  }));
  cleanup.push(feed.subscribe(`funding:${m.symbol}`, (msg) => {
    fundings.unshift(msg.data);
    perp = { ...perp, funding_rate: msg.data.rate, next_funding_time: msg.data.next_funding_time };
    showStats();
    renderFunding();
    loadInsurance().catch(() => {});
  }));
  cleanup.push(feed.subscribe(`liquidations:${m.symbol}`, (msg) => {
    liquidations.unshift(msg.data);
    renderLiquidations();
    loadInsurance().catch(() => {});
  }));
  if (signedIn()) {
    cleanup.push(feed.subscribe("positions", (msg) => {
      if (msg.data) { positions = msg.data; renderPositions(); }
      showWallet().catch(() => {});
    }));
    cleanup.push(feed.subscribe("balances", () => showWallet().catch(() => {})));
    cleanup.push(feed.subscribe("orders", () => refreshOrders()));
  }

  async function loadAll() {
    const [fund, liqs] = await Promise.all([get(`/api/v1/futures/funding?market=${m.symbol}&limit=20`),
      get(`/api/v1/futures/liquidations?market=${m.symbol}&limit=20`), tapePanel.load()]);
    bookPanel.setLast(tapePanel.last());
    fundings = fund.history;
    liquidations = liqs;
    renderFunding();
    renderLiquidations();
    await loadInsurance();
    if (signedIn()) {
      await loadSettings();
      positions = await get("/api/v1/futures/positions");
      openOrders = await get(`/api/v1/orders/open?market=${m.symbol}`);
      await showWallet();
    }
    renderPositions();
    renderOrders();
  }
  function onState(e) {
    if (e.detail.state === "live" && e.detail.was === "stale") {
      loadAll().catch(() => {});
      chartPanel.load().catch(() => {});
    }
  }
  feed.addEventListener("state", onState);
  cleanup.push(() => feed.removeEventListener("state", onState));

  showStats();
  await loadAll().catch((err) => toast(futuresError(err), "error"));
  return () => { for (const f of cleanup.reverse()) f(); };
}

/** A refusal of the futures API in a trader's words. */
export function futuresError(err) {
  const reason = err?.reason || err?.message || "";
  switch (err?.code) {
    case "INSUFFICIENT_MARGIN": return `Not enough margin: ${reason}`;
    case "REDUCE_ONLY": return "Reduce-only: there is no position this order could reduce";
    case "INVALID_LEVERAGE": return `Leverage not allowed: ${reason}`;
    case "INDEX_STALE": return "The index price is stale: only orders that reduce a position are taken now";
    case "MARKET_HALTED": return "This market is halted: it takes no new order; open orders can still be cancelled";
    case "POSITION_OPEN": return "The margin mode changes only with no position and no open order on this market";
    case "NO_POSITION": return "There is no position on this market";
    case "NO_LIQUIDITY": return "No one is on the other side right now: nothing was filled";
    case "NETWORK": return "The exchange cannot be reached: check your connection";
    default: return reason ? `${reason}${err?.code ? ` (${err.code})` : ""}` : "Not accepted";
  }
}
