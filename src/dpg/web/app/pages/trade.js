// The trade page: market, ticker, order book (grouping, depth bars, click to fill), recent trades,
// candlestick chart, order form (keyboard outside the fields: B / S pick a side; Enter sends, Esc
// clears), balances, and the tabs open orders / order history / fills of every market (with a
// market filter), all kept live by the feed. Results come as toasts; a refusal is said in the
// trader's units next to the field it concerns. On a phone a Buy / Sell bar stays at the bottom.
import { get, markets as loadMarkets, post } from "../api.js";
import { BookPanel } from "../book.js";
import { ChartPanel } from "../chart.js";
import { h, notify, replace, table, time, toast } from "../dom.js";
import { feed } from "../feed.js";
import {
  MarketMath, MoneyError, displayPlaces, formatUnits, group, parseUnits, rescale, roundTo, shown,
} from "../money.js";
import { ORDER_HEAD, TYPE_LABELS, cancelAllButton, orderRow as anOrderRow, td } from "../orders.js";
import { go } from "../router.js";
import * as session from "../session.js";
import { TapePanel } from "../tape.js";

const NOT_DECIMAL = /[^0-9.,\s]/; // what a price or amount field refuses to take
const FILL_WAIT_MS = 300; // fills of one order arriving within this are told in one toast

/** A number without its trailing zeros ("5.00" -> "5", "0.0100" -> "0.01"). */
function plain(text) {
  return text.includes(".") ? text.replace(/\.?0+$/, "") : text;
}

/** A quote amount (base units of the quote asset) as a trader reads it: at the tick's places
 * (cents for USDT), rounded half up, with thousands separators. */
function cash(m, units) {
  return group(formatUnits(roundTo(units, m.quoteDecimals, m.pd), m.pd));
}

/** The average price of `qty` (quantity units) bought or sold for `quote` (quote units), rounded
 * half up to the tick's places. */
function average(m, qty, quote) {
  if (qty <= 0n) return 0n;
  const num = quote * 10n ** BigInt(m.pd + m.qd);
  const den = qty * 10n ** BigInt(m.quoteDecimals);
  return (num + den / 2n) / den;
}

/** "Bought 0.2500 BTC for 15,000.00 USDT at 60,000.00": a fill (or several of one order) told. */
export function fillText(m, side, qty, quote) {
  const verb = side === "buy" ? "Bought" : "Sold";
  return `${verb} ${group(m.fmtQty(qty))} ${m.base} for ${cash(m, quote)} ${m.quote} at ${group(m.fmtPrice(average(m, qty, quote)))}`;
}

function minOrder(m) {
  return `${group(plain(formatUnits(rescale(m.minNotional, m.quoteDecimals, m.pd), m.pd)))} ${m.quote}`;
}

/** An order refusal (the API's code and reason) in the trader's words and units, with the field it
 * concerns ("price", "stop", "amount", or null for the form as a whole). `available` is the
 * spendable balance as shown on the page. */
export function orderError(err, m, side, available = null) {
  const code = err?.code || "";
  const reason = String(err?.reason || err?.message || "");
  const spend = side === "buy" ? m.quote : m.base;
  const tick = `${plain(m.fmtPrice(m.tick))} ${m.quote}`;
  const lot = `${plain(m.fmtQty(m.lot))} ${m.base}`;
  const named = /stop/i.test(reason) ? "stop" : /price/i.test(reason) ? "price" : "amount";
  const priceField = named === "stop" ? "stop" : "price";
  switch (code) {
    case "BELOW_MIN_NOTIONAL":
      return { field: "amount", text: `Minimum order ${minOrder(m)}` };
    case "INSUFFICIENT_FUNDS":
      return { field: "amount", text: `Not enough ${spend}${available !== null ? `: ${available} ${spend} available` : ""}` };
    case "PRICE_OFF_TICK":
      return { field: priceField, text: `${priceField === "stop" ? "The stop price" : "The price"} goes in steps of ${tick}` };
    case "QUANTITY_OFF_LOT":
      return { field: "amount", text: `The amount goes in steps of ${lot}` };
    case "INVALID_PRICE":
      return { field: priceField, text: priceField === "stop" ? "Enter a stop price above 0" : "Enter a price above 0" };
    case "INVALID_QUANTITY":
      return { field: "amount", text: `Enter an amount of at least ${lot}` };
    case "INVALID_AMOUNT":
      return { field: named, text: /decimal/i.test(reason)
        ? `At most ${named === "amount" ? m.qd : m.pd} decimals here`
        : "Enter a number, such as 0.25" };
    case "POST_ONLY_WOULD_TAKE":
      return { field: "price", text: side === "buy"
        ? "Post-only: this price would buy at once; set it below the lowest ask"
        : "Post-only: this price would sell at once; set it above the highest bid" };
    case "FOK_NOT_FILLABLE":
      return { field: "amount", text: "Fill-or-kill: the book cannot fill all of this amount at once" };
    case "NO_LIQUIDITY":
      return { field: null, text: side === "buy" ? "No one is selling right now: nothing was bought" : "No one is buying right now: nothing was sold" };
    case "STOP_WOULD_TRIGGER":
      return { field: "stop", text: `The last price has already reached this stop: set it ${side === "buy" ? "above" : "below"} the last price` };
    case "UNKNOWN_MARKET":
      return { field: null, text: `${m.symbol} is not traded here` };
    case "MARKET_HALTED":
      return { field: null, text: `${m.symbol} is halted: it takes no new order; open orders can still be cancelled` };
    case "UNKNOWN_ACCOUNT":
    case "INVALID_ACCOUNT":
      return { field: null, text: "This account cannot trade: log in again, or contact support" };
    case "INVALID_ORDER":
      return { field: null, text: "The exchange does not take this kind of order here: check the order type" };
    case "DUPLICATE_CLIENT_ORDER_ID":
      return { field: null, text: "This order was sent already" };
    case "ORDER_NOT_FOUND":
      return { field: null, text: "This order is no longer open: it was filled or cancelled" };
    case "UNAVAILABLE":
      return { field: null, text: "The exchange is not taking orders right now; nothing was placed. Try again shortly" };
    case "RATE_LIMITED":
      return { field: null, text: "Too many requests: wait a moment and try again" };
    case "NETWORK":
      return { field: null, text: "The exchange cannot be reached: check your connection" };
    case "AUTH_REQUIRED":
    case "SESSION_REQUIRED":
    case "SESSION_EXPIRED":
    case "SESSION_INVALID":
      return { field: null, text: "Your session has ended: log in again" };
    case "INVALID_REQUEST":
      return { field: null, text: `Check the order: ${reason}` };
    default:
      return { field: null, text: reason || "The order was not accepted" };
  }
}

/** Keys typed here are the field's, never a shortcut. */
function typing(el) {
  return el instanceof HTMLElement && (el.isContentEditable || !!el.closest("input, textarea, select, [role=dialog]"));
}

/** A price or amount field: takes digits, "." and "," only (no stray letter), as typed or pasted. */
function decimalInput(attrs) {
  const input = h("input", { inputmode: "decimal", autocomplete: "off", spellcheck: "false", ...attrs });
  input.addEventListener("beforeinput", (e) => {
    const text = e.data ?? e.dataTransfer?.getData("text") ?? "";
    if (NOT_DECIMAL.test(text)) e.preventDefault();
  });
  input.addEventListener("input", () => {
    const clean = input.value.replace(/[^0-9.,]/g, "");
    if (clean !== input.value) input.value = clean;
  });
  return input;
}

export async function mount(root, params) {
  const { markets, assets } = await loadMarkets();
  const wanted = (params.market || "").replace("-", "/").toUpperCase();
  const market = markets.find((x) => x.market === wanted) || markets[0];
  const maths = Object.fromEntries(markets.map((x) => [x.market, new MarketMath(x, assets)]));
  const m = maths[market.market];
  const places = displayPlaces(markets, assets);
  const slug = m.symbol.replace("/", "-");
  const cleanup = [];
  const signedIn = () => !!session.current();

  // ---------------------------------------------------------------- layout
  const select = h("select", { name: "market", "aria-label": "Market" },
    markets.map((x) => h("option", { value: x.market, selected: x.market === m.symbol }, x.market)));
  select.addEventListener("change", () => go(`/trade/${select.value.replace("/", "-")}`));
  const stats = h("div", { class: "stats" });
  const bookPanel = new BookPanel(m, { onPrice: (p) => form?.fillPrice(p) });
  const tapePanel = new TapePanel(m, {
    onTrade: (t) => {
      bookPanel.setLast(t.price);
      form?.update();
    },
  });
  const chartPanel = new ChartPanel(m.symbol, market.price_decimals);
  // scrollable regions take the focus, so a keyboard can scroll them (axe: scrollable-region-focusable)
  const formBox = h("div", { id: "order-form" });
  const balancesEl = h("div", { class: "balances", "data-testid": "balances", tabindex: "0", role: "region", "aria-label": "Balances" });
  const tabsEl = h("div", { class: "tabs", role: "tablist", "aria-label": "Your orders" });
  const filter = h("select", { name: "orders_market", "aria-label": "Show the orders of", "data-testid": "market-filter" },
    h("option", { value: "" }, "All markets"), markets.map((x) => h("option", { value: x.market }, x.market)));
  const tabBody = h("div", { class: "tabbody", role: "tabpanel" });
  const skip = h("a", { class: "skip", href: "#order-form", "data-testid": "skip-to-form" }, "Skip to the order form");
  const mobileBar = h("div", { class: "mbar", "data-testid": "mobile-bar" });

  root.append(h("section", { class: "trade", "data-testid": "trade" },
    h("h1", { class: "sr-only" }, `Trade ${m.symbol}`),
    skip,
    h("div", { class: "bar panel" }, select, stats),
    bookPanel.el,
    chartPanel.el,
    h("div", { class: "form panel" }, formBox,
      h("div", { class: "head" }, h("h2", {}, "Balances"),
        signedIn() ? h("a", { href: "/wallet", class: "small" }, "Deposit") : null),
      balancesEl),
    tapePanel.el,
    h("div", { class: "orders panel" }, h("div", { class: "tabbar" }, tabsEl, filter), tabBody),
    mobileBar));

  // ---------------------------------------------------------------- ticker
  function showTicker(t) {
    if (!t) return;
    const both = t.open && t.last;
    const open = both ? parseUnits(t.open, m.pd) : 0n;
    const change = both ? parseUnits(t.last, m.pd) - open : 0n;
    const dir = change < 0n ? "down" : "up";
    const sign = change < 0n ? "" : "+";
    // the change in hundredths of a percent, rounded half away from zero
    const hundredths = open > 0n ? (2n * change * 10_000n + (change < 0n ? -open : open)) / (2n * open) : 0n;
    const pct = open > 0n ? `(${sign}${formatUnits(hundredths, 2)}%)` : "";
    replace(stats,
      h("span", { class: `last ${dir}`, "data-testid": "last" }, t.last ? group(t.last) : "—"),
      h("span", {}, h("small", {}, "24h change "), h("b", { class: dir, "data-testid": "change" },
        both ? `${sign}${group(m.fmtPrice(change))} ${pct}` : "—")),
      h("span", {}, h("small", {}, "24h high "), t.high ? group(t.high) : "—"),
      h("span", {}, h("small", {}, "24h low "), t.low ? group(t.low) : "—"),
      h("span", {}, h("small", {}, `24h volume (${m.base}) `), group(t.volume)));
  }

  // ---------------------------------------------------------------- order book, trades, chart
  const depthChannel = bookPanel.channel;
  cleanup.push(chartPanel.start());

  // ---------------------------------------------------------------- account data
  let balances = {};
  const tabs = { open: "Open orders", history: "Order history", fills: "Fills" };
  let tab = "open";
  let openOrders = [];
  let fills = [];

  /** A balance as shown: at the asset's display places, rounded down. */
  function amountOf(asset, key = "available") {
    const b = balances[asset];
    return shown(b ? b[key] : "0", places[asset] ?? 8);
  }

  async function loadBalances() {
    if (!signedIn()) return replace(balancesEl, h("p", { class: "muted" }, "Log in to see your balances."));
    const rows = await get("/api/v1/balances");
    balances = Object.fromEntries(rows.map((b) => [b.asset, b]));
    const held = (b) => b.total.replace(/[0.]/g, "") !== "";
    const mine = rows.filter((b) => b.asset === m.base || b.asset === m.quote)
      .concat(rows.filter((b) => b.asset !== m.base && b.asset !== m.quote && held(b)));
    const cell = (b, key) => h("td", { class: "num", title: `${b[key]} ${b.asset}`, "data-testid": `${key}-${b.asset}` },
      shown(b[key], places[b.asset] ?? 8));
    replace(balancesEl,
      rows.some(held) ? null : h("p", { class: "nofunds", "data-testid": "no-funds" }, "No funds yet. ",
        h("a", { href: "/wallet", "data-testid": "deposit-link" }, "Deposit"), " to start trading."),
      table(["Asset", "Available", "Locked"], mine.map((b) => h("tr", { dataset: { asset: b.asset } },
        h("th", { scope: "row" }, b.asset), cell(b, "available"), cell(b, "locked")))));
    form?.update();
  }

  function marketOf(o) {
    return maths[o.market] || m;
  }

  function orderRow(o, open) {
    const om = marketOf(o);
    return anOrderRow(o, om, { open, errorText: (err) => orderError(err, om, o.side).text, changed: refreshPrivate });
  }

  async function renderTab() {
    for (const b of tabsEl.children) b.setAttribute("aria-selected", String(b.dataset.tab === tab));
    if (!signedIn()) return replace(tabBody, h("p", { class: "muted" }, h("a", { href: "/account/login" }, "Log in"), " to see your orders."));
    const head = ORDER_HEAD;
    const only = filter.value;
    if (tab === "open") {
      const rows = openOrders.filter((o) => !only || o.market === only);
      const all = cancelAllButton(rows, only || null,
        { errorText: (err, mk) => orderError(err, maths[mk] || m, "buy").text, changed: refreshPrivate });
      replace(tabBody, h("div", { class: "tabtools" }, all),
        table([...head, h("span", { class: "sr-only" }, "Cancel")], rows.map((o) => orderRow(o, true)), only ? `No open orders on ${only}` : "No open orders"));
    } else if (tab === "history") {
      // the history is read from the projections, which may be a moment behind the live open
      // orders: an order it still shows as live that is no longer open is read again shortly
      for (let tries = 0; ; tries++) {
        const r = await get(`/api/v1/orders/history?limit=50${only ? `&market=${only.replace("/", "-")}` : ""}`);
        if (tab !== "history" || filter.value !== only) return;
        replace(tabBody, table(head, r.orders.map((o) => orderRow(o, false)), "No orders yet"));
        const open = new Set(openOrders.map((o) => o.order_id));
        const behind = r.orders.some((o) => (o.status === "open" || o.status === "partially_filled") && !open.has(o.order_id));
        if (!behind || tries >= 20) return;
        await new Promise((done) => setTimeout(done, 250));
        if (tab !== "history" || filter.value !== only) return;
      }
    } else {
      const rows = fills.filter((f) => !only || f.market === only);
      replace(tabBody, table(["Time", "Market", "Side", "Price", "Amount", "Total", "Fee", "Role"], rows.map((f) => {
        const fm = marketOf(f);
        return h("tr", { class: "fill", dataset: { market: f.market } },
          td("Time", time(f.time)), td("Market", f.market, { class: "mkt" }),
          td("Side", f.side, { class: f.side === "buy" ? "up" : "down" }), td("Price", group(f.price), { class: "num" }),
          td("Amount", `${group(f.quantity)} ${fm.base}`, { class: "num" }),
          td("Total", `${cash(fm, fm.quoteAmount(f.quote_quantity))} ${fm.quote}`, { class: "num" }),
          td("Fee", `${shown(f.fee, places[f.fee_asset] ?? 8)} ${f.fee_asset}`, { class: "num", title: `${f.fee} ${f.fee_asset}` }),
          td("Role", f.role));
      }), "No fills yet"));
    }
  }
  for (const [k, label] of Object.entries(tabs)) {
    tabsEl.append(h("button", { type: "button", role: "tab", "data-tab": k, onclick: () => { tab = k; renderTab(); } }, label));
  }
  filter.addEventListener("change", () => renderTab());

  function addFills(rows) {
    const seen = new Set(fills.map((f) => f.trade_id));
    fills = [...fills, ...rows.filter((t) => !seen.has(t.trade_id))].sort((a, b) => b.trade_id - a.trade_id).slice(0, 200);
  }

  async function loadFills() {
    const r = await get("/api/v1/my-trades?limit=50");
    addFills(r.trades);
  }

  let refreshing = null;
  function refreshPrivate() {
    if (!signedIn()) { loadBalances(); renderTab(); return; }
    if (refreshing) return;
    refreshing = setTimeout(async () => {
      refreshing = null;
      try {
        openOrders = await get("/api/v1/orders/open");
        await loadBalances();
        await renderTab();
      } catch (err) { toast(orderError(err, m, "buy").text, "error"); }
    }, 50);
  }

  // ---------------------------------------------------------------- fills told as toasts
  // A fill is told once: from the answer to the order that made it, or else from the feed (a
  // resting order filled later, or another window's order), several fills of one order together.
  const told = new Set();
  const waiting = new Map(); // order id -> fills from the feed not yet told
  let placing = 0; // orders sent and not yet answered: their fills wait for the answer
  let fillTimer = null;

  function tellFills() {
    fillTimer = null;
    if (placing) return;
    for (const list of waiting.values()) {
      const fresh = list.filter((f) => !told.has(f.trade_id));
      if (!fresh.length) continue;
      const fm = marketOf(fresh[0]);
      let qty = 0n;
      let quote = 0n;
      for (const f of fresh) {
        told.add(f.trade_id);
        qty += fm.qty(f.quantity);
        quote += fm.quoteAmount(f.quote_quantity);
      }
      const where = fm === m ? "" : ` on ${fm.symbol}`;
      toast(`${fillText(fm, fresh[0].side, qty, quote)}${where}`, "ok");
    }
    waiting.clear();
  }

  function onFill(f) {
    if (told.has(f.trade_id)) return;
    const list = waiting.get(f.order_id) || [];
    list.push(f);
    waiting.set(f.order_id, list);
    if (!fillTimer) fillTimer = setTimeout(tellFills, FILL_WAIT_MS);
  }
  cleanup.push(() => clearTimeout(fillTimer));

  // ---------------------------------------------------------------- order form
  const form = signedIn() ? orderForm() : null;
  if (!form) {
    replace(formBox, h("div", { class: "login-cta" }, h("p", {}, "Log in to trade ", m.symbol, "."),
      h("a", { class: "btn primary", href: "/account/login" }, "Log in"), " ", h("a", { class: "btn", href: "/account/signup" }, "Sign up")));
  }

  function orderForm() {
    let side = "buy";
    let type = "limit";
    const sideBtns = ["buy", "sell"].map((s) => h("button", {
      type: "button", class: `side ${s}`, "data-side": s, "aria-pressed": "false", "aria-keyshortcuts": s === "buy" ? "B" : "S",
      onclick: () => pickSide(s),
    }, s === "buy" ? "Buy" : "Sell", " ", h("kbd", { class: "hint", "aria-hidden": "true" }, s === "buy" ? "B" : "S")));
    const typeBtns = [["limit", "Limit"], ["market", "Market"], ["stop_limit", "Stop-limit"]].map(([t, l]) =>
      h("button", { type: "button", class: "btn small", "data-type": t, "aria-pressed": "false", onclick: () => pickType(t) }, l));
    const stop = decimalInput({ name: "stop_price", placeholder: m.fmtPrice(0n), "aria-describedby": "stop-error" });
    const price = decimalInput({ name: "price", placeholder: m.fmtPrice(0n), "aria-describedby": "price-error" });
    const amount = decimalInput({ name: "amount", placeholder: m.fmtQty(0n), "aria-describedby": "amount-error" });
    const unit = h("select", { name: "unit", "aria-label": "Amount in" },
      h("option", { value: "base" }, m.base), h("option", { value: "quote" }, m.quote));
    const postOnly = h("input", { type: "checkbox", name: "post_only" });
    const ioc = h("input", { type: "checkbox", name: "ioc" });
    postOnly.addEventListener("change", () => { if (postOnly.checked) ioc.checked = false; });
    ioc.addEventListener("change", () => { if (ioc.checked) postOnly.checked = false; });
    const pcts = h("div", { class: "seg pcts", role: "group", "aria-label": "Part of the available balance" },
      [25, 50, 75, 100].map((p) => h("button", {
        type: "button", class: "btn small", "data-pct": p, "aria-label": `${p}% of available`, onclick: () => percent(BigInt(p)),
      }, `${p}%`)));
    const total = h("p", { class: "total muted", "data-testid": "total" });
    const avail = h("p", { class: "avail muted", "data-testid": "form-available" });
    const errs = Object.fromEntries(["stop", "price", "amount"].map((k) =>
      [k, h("p", { class: "field-error", id: `${k}-error`, "data-testid": `${k}-error`, hidden: true })]));
    const inputs = { stop, price, amount };
    const msg = h("p", { class: "notice", hidden: true, role: "alert", "data-testid": "order-msg" });
    const submit = h("button", { type: "submit", class: "btn primary wide", "data-testid": "submit" });
    const stopRow = h("div", { class: "field" }, h("label", {}, `Stop (${m.quote})`, stop), errs.stop);
    const priceRow = h("div", { class: "field" }, h("label", {}, `Price (${m.quote})`, price), errs.price);
    const amountRow = h("div", { class: "field" }, h("label", {}, "Amount", h("div", { class: "with-unit" }, amount, unit)), errs.amount);
    const flags = h("div", { class: "row flags" }, h("label", { class: "check" }, postOnly, "Post-only"), h("label", { class: "check" }, ioc, "IOC"));
    const el = h("form", { class: "orderform", "data-testid": "order-form", autocomplete: "off", "aria-label": `Order ${m.symbol}`, novalidate: true },
      h("div", { class: "sides", role: "group", "aria-label": "Side" }, sideBtns),
      h("div", { class: "seg", role: "group", "aria-label": "Order type" }, typeBtns),
      stopRow, priceRow, amountRow, pcts, flags, avail, total, msg, submit);
    replace(formBox, el);

    // A field's message: the refusal of the last try (until anything is changed), else for the
    // amount what is wrong with it as typed (more than the balance).
    const refused = { stop: "", price: "", amount: "" };
    let typed = "";
    function paint(field) {
      const text = refused[field] || (field === "amount" ? typed : "");
      errs[field].textContent = text;
      errs[field].hidden = !text;
      if (text) inputs[field].setAttribute("aria-invalid", "true"); else inputs[field].removeAttribute("aria-invalid");
    }
    /** Show (or with "" clear) the message of one field, or of the form when `field` is null. */
    function say(field, text) {
      if (!field) return notify(msg, text);
      refused[field] = text;
      paint(field);
    }
    function clearAll() {
      for (const k of Object.keys(errs)) say(k, "");
      say(null, "");
    }

    function pickSide(s) {
      if (s !== side) clearAll();
      side = s;
      for (const b of sideBtns) {
        b.classList.toggle("active", b.dataset.side === s);
        b.setAttribute("aria-pressed", String(b.dataset.side === s));
      }
      el.dataset.side = s;
      update();
    }
    function pickType(t) {
      if (t !== type) clearAll();
      type = t;
      for (const b of typeBtns) {
        b.classList.toggle("active", b.dataset.type === t);
        b.setAttribute("aria-pressed", String(b.dataset.type === t));
      }
      stopRow.hidden = t !== "stop_limit";
      priceRow.hidden = t === "market";
      flags.hidden = t !== "limit";
      update();
    }

    function bal(asset) {
      const b = balances[asset];
      return b ? parseUnits(b.available, assets[asset]) : 0n;
    }
    function best(levels, lowest) {
      let out = null;
      for (const p of levels || []) { const u = m.price(p); if (out === null || (lowest ? u < out : u > out)) out = u; }
      return out;
    }
    function refPrice() {
      const book = feed.book(depthChannel);
      if (type === "market") return side === "buy" ? best(book?.asks.keys(), true) : best(book?.bids.keys(), false);
      return price.value ? m.price(price.value) : null;
    }

    function percent(p) {
      clearAll();
      try {
        if (side === "buy") {
          const spend = (bal(m.quote) * p) / 100n;
          if (unit.value === "quote") { amount.value = m.fmtQuote(spend); return update(); }
          const px = refPrice();
          if (!px) return say("price", "Enter a price first");
          amount.value = m.fmtQty(m.qtyFor(spend, px));
        } else {
          const qty = m.qtyOfBase((bal(m.base) * p) / 100n);
          if (unit.value === "quote") {
            const px = refPrice();
            if (!px) return say("price", "Enter a price first");
            amount.value = m.fmtQuote(m.notional(px, qty));
          } else {
            amount.value = m.fmtQty(qty);
          }
        }
      } catch (e) {
        say("amount", e.message);
      }
      update();
    }

    class FieldError extends Error {
      constructor(field, text) { super(text); this.field = field; }
    }
    /** A field parsed to base units; a parse failure is that field's error in its own words. */
    function parsed(field, parse, what) {
      try {
        return parse(inputs[field].value);
      } catch (e) {
        if (!(e instanceof MoneyError)) throw e;
        if (!inputs[field].value.trim()) throw new FieldError(field, `Enter ${what}`);
        throw new FieldError(field, /decimals/.test(e.message) ? `${e.message} here` : `Enter a number, such as ${field === "amount" ? "0.25" : "100.50"}`);
      }
    }
    function lotChecked(q) {
      if (q <= 0n) throw new FieldError("amount", `Enter an amount of at least ${plain(m.fmtQty(m.lot))} ${m.base}`);
      if (q % m.lot) throw new FieldError("amount", `The amount goes in steps of ${plain(m.fmtQty(m.lot))} ${m.base}`);
      return q;
    }

    /** The order request from the form: every amount parsed to base units and written back
     * canonically, refused here (with the field) when the exchange would refuse it. */
    function request() {
      const body = { market: m.symbol, side };
      const byQuote = unit.value === "quote";
      if (type === "market") {
        body.type = "market";
        if (byQuote) {
          if (side !== "buy") throw new FieldError("amount", `A market sell is given in ${m.base}`);
          const q = parsed("amount", (t) => m.quoteAmount(t), "an amount");
          if (q < m.minNotional) throw new FieldError("amount", `Minimum order ${minOrder(m)}`);
          if (q > bal(m.quote)) throw new FieldError("amount", `Not enough ${m.quote}: ${amountOf(m.quote)} ${m.quote} available`);
          body.quote_quantity = m.fmtQuote(q);
        } else {
          const qty = lotChecked(parsed("amount", (t) => m.qty(t), "an amount"));
          if (side === "sell" && rescale(qty, m.qd, m.baseDecimals) > bal(m.base)) {
            throw new FieldError("amount", `Not enough ${m.base}: ${amountOf(m.base)} ${m.base} available`);
          }
          body.quantity = m.fmtQty(qty);
        }
        return body;
      }
      const px = parsed("price", (t) => m.price(t), "a price");
      if (px <= 0n) throw new FieldError("price", "Enter a price above 0");
      if (px % m.tick) throw new FieldError("price", `The price goes in steps of ${plain(m.fmtPrice(m.tick))} ${m.quote}`);
      body.price = m.fmtPrice(px);
      const qty = byQuote ? m.qtyFor(parsed("amount", (t) => m.quoteAmount(t), "an amount"), px)
        : parsed("amount", (t) => m.qty(t), "an amount");
      lotChecked(qty);
      if (m.notional(px, qty) < m.minNotional) throw new FieldError("amount", `Minimum order ${minOrder(m)}`);
      const over = overBalance(px, qty);
      if (over) throw new FieldError("amount", over);
      body.quantity = m.fmtQty(qty);
      if (type === "stop_limit") {
        const sp = parsed("stop", (t) => m.price(t), "a stop price");
        if (sp <= 0n) throw new FieldError("stop", "Enter a stop price above 0");
        if (sp % m.tick) throw new FieldError("stop", `The stop price goes in steps of ${plain(m.fmtPrice(m.tick))} ${m.quote}`);
        body.type = "stop_limit";
        body.stop_price = m.fmtPrice(sp);
      } else {
        body.type = postOnly.checked ? "post_only" : ioc.checked ? "ioc" : "limit";
      }
      return body;
    }

    /** "Not enough USDT: …" when `qty` at `px` needs more than is available (else ""). */
    function overBalance(px, qty) {
      if (side === "buy") {
        return m.notional(px, qty) > bal(m.quote) ? `Not enough ${m.quote}: ${amountOf(m.quote)} ${m.quote} available` : "";
      }
      return rescale(qty, m.qd, m.baseDecimals) > bal(m.base) ? `Not enough ${m.base}: ${amountOf(m.base)} ${m.base} available` : "";
    }

    /** The total, and what is already wrong with the amount, as the trader types. */
    function update() {
      const byQuote = unit.value === "quote";
      unit.options[1].disabled = type === "market" && side === "sell";
      if (unit.options[1].disabled && byQuote) unit.value = "base";
      const spendAsset = side === "buy" ? m.quote : m.base;
      const empty = !balances[spendAsset] || bal(spendAsset) === 0n;
      replace(avail, `Available: ${amountOf(spendAsset)} ${spendAsset}`,
        empty ? [" · ", h("a", { href: "/wallet" }, `Deposit ${spendAsset}`)] : null);
      replace(submit, `${side === "buy" ? "Buy" : "Sell"} ${m.base}`);
      submit.className = `btn wide ${side}`;
      total.textContent = "";
      typed = "";
      try {
        const px = refPrice();
        if (!amount.value.trim() || !px) return;
        let qty;
        if (byQuote) {
          const q = m.quoteAmount(amount.value);
          qty = m.qtyFor(q, px);
          total.textContent = `≈ ${group(m.fmtQty(qty))} ${m.base}`;
          if (side === "buy" && q > bal(m.quote)) {
            typed = `Not enough ${m.quote}: ${amountOf(m.quote)} ${m.quote} available`;
            return;
          }
        } else {
          qty = m.qty(amount.value);
          total.textContent = `Total ≈ ${cash(m, m.notional(px, qty))} ${m.quote}`;
        }
        typed = overBalance(px, qty);
      } catch (e) {
        if (!(e instanceof MoneyError)) throw e;
        typed = /decimals/.test(e.message) ? `${e.message} here` : "";
      } finally {
        paint("amount");
      }
    }
    el.addEventListener("input", clearAll); // a change makes the last refusal old news
    for (const i of [price, amount, stop, unit]) i.addEventListener("input", update);

    /** What the answer to a placed order tells the trader. */
    function tellPlaced(o) {
      const om = marketOf(o);
      for (const f of o.fills || []) told.add(f.trade_id);
      const filled = om.qty(o.filled || "0");
      if (filled > 0n) toast(fillText(om, o.side, filled, om.quoteAmount(o.filled_quote)), "ok");
      const what = `${o.side === "buy" ? "Buy" : "Sell"} ${TYPE_LABELS[o.type] || o.type} order`;
      const at = o.price ? ` at ${group(o.price)} ${om.quote}` : "";
      const stopAt = o.stop_price ? `, when the price reaches ${group(o.stop_price)}` : "";
      if (o.status === "open" && filled === 0n) {
        toast(`${what} placed: ${group(o.quantity)} ${om.base}${at}${stopAt}`, "ok");
      } else if (o.status === "open" || o.status === "partially_filled") {
        toast(`The rest, ${group(o.remaining)} ${om.base}, is open${at}`, "info");
      } else if (o.status === "expired" || o.status === "canceled") {
        const left = filled > 0n ? "the rest" : "nothing filled";
        toast(`${what} ${o.status === "expired" ? "expired" : "cancelled"}: ${left}${o.reason ? ` (${o.reason})` : ""}`, filled > 0n ? "info" : "error");
      }
    }

    el.addEventListener("submit", async (e) => {
      e.preventDefault();
      clearAll();
      let body;
      try {
        body = request();
      } catch (err) {
        if (!(err instanceof FieldError)) throw err;
        say(err.field, err.message);
        return inputs[err.field].focus();
      }
      submit.disabled = true;
      placing++;
      const sent = amount.value;
      try {
        const o = await post("/api/v1/orders", body);
        el.dataset.lastOrder = JSON.stringify(o);
        tellPlaced(o);
        if (amount.value === sent) amount.value = ""; // unless the next one is being typed already
        refreshPrivate();
      } catch (err) {
        const { field, text } = orderError(err, m, side, amountOf(side === "buy" ? m.quote : m.base));
        say(field, text);
        if (!field) toast(text, "error");
      } finally {
        placing--;
        tellFills();
        submit.disabled = false;
        update();
        const shownErr = Object.entries(errs).find(([, x]) => !x.hidden);
        if (shownErr) inputs[shownErr[0]].focus();
      }
    });
    el.addEventListener("keydown", (e) => {
      if (e.key === "Escape") { el.reset(); clearAll(); update(); e.target.blur?.(); }
    });

    pickSide("buy");
    pickType("limit");
    const firstField = () => (type === "market" ? amount : price);
    return {
      fillPrice(p) {
        if (type === "market") pickType("limit");
        price.value = p;
        say("price", "");
        update();
        amount.focus();
      },
      key(k) {
        pickSide(k === "b" ? "buy" : "sell");
        const field = firstField();
        field.focus();
        field.select();
      },
      /** From the phone's Buy / Sell bar: the side picked, the form brought into view. */
      open(s) {
        pickSide(s);
        el.scrollIntoView({ block: "start" });
        firstField().focus({ preventScroll: true });
      },
      focus() {
        sideBtns.find((b) => b.dataset.side === side).focus();
      },
      update,
    };
  }

  // ---------------------------------------------------------------- skip link, phone bar, keys
  skip.addEventListener("click", (e) => {
    e.preventDefault();
    e.stopPropagation(); // not a page change for the router
    if (form) form.focus(); else formBox.querySelector("a")?.focus();
  });
  for (const s of ["buy", "sell"]) {
    mobileBar.append(h("button", {
      type: "button", class: `btn ${s}`, "data-side": s, onclick: () => {
        if (form) form.open(s); else formBox.scrollIntoView({ block: "start" });
      },
    }, `${s === "buy" ? "Buy" : "Sell"} ${m.base}`));
  }

  function onKey(e) {
    if (e.ctrlKey || e.metaKey || e.altKey || !form || typing(e.target)) return;
    const k = e.key.toLowerCase();
    if (k !== "b" && k !== "s") return;
    e.preventDefault();
    form.key(k);
  }
  document.addEventListener("keydown", onKey);
  cleanup.push(() => document.removeEventListener("keydown", onKey));

  // ---------------------------------------------------------------- live data
  cleanup.push(bookPanel.subscribe());
  cleanup.push(tapePanel.subscribe());
  cleanup.push(feed.subscribe(`ticker:${m.symbol}`, (msg) => showTicker(msg.data)));
  if (signedIn()) {
    cleanup.push(feed.subscribe("orders", () => refreshPrivate()));
    cleanup.push(feed.subscribe("balances", () => refreshPrivate()));
    cleanup.push(feed.subscribe("fills", (msg) => {
      const f = msg.data;
      const row = { trade_id: f.trade_id, time: Number(BigInt(f.ts) / 1_000_000n), market: f.market, side: f.side,
        price: f.price, quantity: f.qty, quote_quantity: f.quote_qty, fee: f.fee, fee_asset: f.fee_asset, role: f.role,
        order_id: f.order_id };
      addFills([row]);
      onFill(row);
      refreshPrivate();
    }));
  }

  async function loadPublic() {
    const [, tickers] = await Promise.all([tapePanel.load(), get(`/api/v1/ticker?market=${slug}`)]);
    bookPanel.setLast(tapePanel.last());
    showTicker(tickers[0]);
  }

  async function loadAll() {
    await loadPublic();
    if (signedIn()) {
      await loadFills();
      for (const f of fills) told.add(f.trade_id); // fills from before the page opened are not news
    }
    refreshPrivate();
  }

  function onState(e) {
    if (e.detail.state === "live" && e.detail.was === "stale") {
      loadAll().catch(() => {});
      chartPanel.load().catch(() => {});
    }
  }
  feed.addEventListener("state", onState);
  cleanup.push(() => feed.removeEventListener("state", onState));

  renderTab();
  await loadAll().catch((err) => toast(orderError(err, m, "buy").text, "error"));
  return () => { for (const f of cleanup.reverse()) f(); };
}
