// The trade page: market, ticker, order book (grouping, depth bars, click to fill), recent trades,
// candlestick chart, order form (keyboard: B / S pick a side, Enter sends, Esc clears), balances,
// and the tabs open orders / order history / fills, all kept live by the feed.
import { del, get, markets as loadMarkets, post } from "../api.js";
import { CandleChart } from "../chart.js";
import { confirmStep } from "../confirm.js";
import { errorText, h, notify, replace, table, time } from "../dom.js";
import { feed } from "../feed.js";
import { MarketMath, MoneyError, ceilTo, floorTo, formatUnits, group, parseUnits } from "../money.js";
import { go } from "../router.js";
import * as session from "../session.js";

const INTERVALS = ["1m", "5m", "15m", "1h", "4h", "1d"];
const LEVELS = 12;

export async function mount(root, params) {
  const { markets, assets } = await loadMarkets();
  const wanted = (params.market || "").replace("-", "/").toUpperCase();
  const market = markets.find((x) => x.market === wanted) || markets[0];
  const m = new MarketMath(market, assets);
  const slug = m.symbol.replace("/", "-");
  const cleanup = [];
  const signedIn = () => !!session.current();

  // ---------------------------------------------------------------- layout
  const select = h("select", { name: "market", "aria-label": "Market" },
    markets.map((x) => h("option", { value: x.market, selected: x.market === m.symbol }, x.market)));
  select.addEventListener("change", () => go(`/trade/${select.value.replace("/", "-")}`));
  const stats = h("div", { class: "stats" });
  const chartBox = h("div", { class: "chart", "data-testid": "chart" });
  const tfs = h("div", { class: "seg", role: "group", "aria-label": "Timeframe" });
  const grouping = h("select", { name: "grouping", "aria-label": "Price grouping" },
    [1n, 10n, 100n].map((f) => h("option", { value: String(f) }, m.fmtPrice(m.tick * f))));
  const asksEl = h("div", { class: "levels asks", "data-testid": "asks" });
  const bidsEl = h("div", { class: "levels bids", "data-testid": "bids" });
  const midEl = h("div", { class: "mid" });
  const tradesEl = h("div", { class: "tape", "data-testid": "trades" });
  const formBox = h("div");
  const balancesEl = h("div", { "data-testid": "balances" });
  const tabsEl = h("div", { class: "tabs", role: "tablist" });
  const tabBody = h("div", { class: "tabbody" });

  root.append(h("section", { class: "trade", "data-testid": "trade" },
    h("div", { class: "bar panel" }, select, stats),
    h("div", { class: "book panel" },
      h("div", { class: "head" }, h("h2", {}, "Order book"), grouping),
      h("div", { class: "levels-head" }, h("span", {}, `Price (${m.quote})`), h("span", {}, `Amount (${m.base})`), h("span", {}, "Total")),
      asksEl, midEl, bidsEl),
    h("div", { class: "chartp panel" }, tfs, chartBox),
    h("div", { class: "form panel" }, formBox, h("h2", {}, "Balances"), balancesEl),
    h("div", { class: "tradesp panel" }, h("h2", {}, "Recent trades"),
      h("div", { class: "levels-head" }, h("span", {}, "Price"), h("span", {}, "Amount"), h("span", {}, "Time")), tradesEl),
    h("div", { class: "orders panel" }, tabsEl, tabBody)));

  // ---------------------------------------------------------------- ticker
  function showTicker(t) {
    if (!t) return;
    const change = t.open && t.last ? (parseUnits(t.last, m.pd) - parseUnits(t.open, m.pd)) : 0n;
    replace(stats,
      h("span", { class: `last ${change < 0n ? "down" : "up"}`, "data-testid": "last" }, t.last ? group(t.last) : "—"),
      h("span", {}, h("small", {}, "24h change "), h("b", { class: change < 0n ? "down" : "up" },
        t.open && t.last ? `${change < 0n ? "" : "+"}${m.fmtPrice(change)}` : "—")),
      h("span", {}, h("small", {}, "24h high "), t.high ? group(t.high) : "—"),
      h("span", {}, h("small", {}, "24h low "), t.low ? group(t.low) : "—"),
      h("span", {}, h("small", {}, `24h volume (${m.base}) `), group(t.volume)));
  }

  // ---------------------------------------------------------------- order book
  const depthChannel = `depth:${m.symbol}`;
  let bookDirty = false;
  let lastPrice = null;

  function grouped(levels, factor, up) {
    const step = m.tick * factor;
    const out = new Map();
    for (const [p, q] of levels) {
      const price = up ? ceilTo(m.price(p), step) : floorTo(m.price(p), step);
      out.set(price, (out.get(price) || 0n) + m.qty(q));
    }
    return [...out.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  }

  function levelRows(levels, side) {
    let cum = 0n;
    const rows = levels.map(([p, q]) => { cum += q; return [p, q, cum]; });
    const max = cum > 0n ? cum : 1n;
    return rows.map(([p, q, c]) => {
      const pct = Number((c * 1000n) / max) / 10;
      return h("button", {
        type: "button", class: `level ${side}`, "data-price": m.fmtPrice(p), style: `--depth:${pct}%`,
        title: "Use this price",
      }, h("span", { class: "p" }, group(m.fmtPrice(p))), h("span", {}, m.fmtQty(q)), h("span", {}, m.fmtQty(c)));
    });
  }

  function renderBook() {
    bookDirty = false;
    const book = feed.book(depthChannel);
    if (!book) return;
    const factor = BigInt(grouping.value);
    const asks = grouped(book.asks, factor, true).slice(0, LEVELS);
    const bids = grouped(book.bids, factor, false).reverse().slice(0, LEVELS);
    replace(asksEl, levelRows(asks, "ask").reverse());
    replace(bidsEl, levelRows(bids, "bid"));
    const spread = asks.length && bids.length ? m.fmtPrice(asks[0][0] - bids[0][0]) : null;
    replace(midEl, h("span", { class: "last" }, lastPrice ? group(lastPrice) : "—"),
      spread ? h("small", {}, `spread ${spread}`) : null);
  }

  function scheduleBook() {
    if (!bookDirty) { bookDirty = true; requestAnimationFrame(renderBook); }
  }

  grouping.addEventListener("change", renderBook);
  for (const el of [asksEl, bidsEl]) {
    el.addEventListener("click", (e) => {
      const b = e.target.closest(".level");
      if (b) form?.fillPrice(b.dataset.price);
    });
  }

  // ---------------------------------------------------------------- recent trades
  let tape = [];
  function renderTape() {
    replace(tradesEl, tape.slice(0, 40).map((t) => h("div", { class: `row ${t.taker_side === "sell" ? "down" : "up"}` },
      h("span", {}, group(t.price)), h("span", {}, t.quantity), h("span", { class: "muted" }, time(t.time)))));
  }

  // ---------------------------------------------------------------- chart
  const chart = new CandleChart(chartBox, market);
  cleanup.push(() => chart.remove());
  let interval = "1m";
  let unsubCandles = null;
  async function loadCandles() {
    const rows = await get(`/api/v1/candles?market=${slug}&interval=${interval}&limit=500`);
    chart.set(rows);
  }
  function pickInterval(iv) {
    interval = iv;
    for (const b of tfs.children) b.classList.toggle("active", b.dataset.interval === iv);
    if (unsubCandles) unsubCandles();
    unsubCandles = feed.subscribe(`candles:${m.symbol}:${iv}`, (msg) => { for (const c of msg.data || []) chart.update(c); });
    loadCandles().catch(() => {});
  }
  for (const iv of INTERVALS) {
    tfs.append(h("button", { type: "button", class: "btn small", "data-interval": iv, onclick: () => pickInterval(iv) }, iv));
  }
  cleanup.push(() => unsubCandles && unsubCandles());

  // ---------------------------------------------------------------- account data
  let balances = {};
  const tabs = { open: "Open orders", history: "Order history", fills: "Fills" };
  let tab = "open";
  let openOrders = [];
  let fills = [];

  async function loadBalances() {
    if (!signedIn()) return replace(balancesEl, h("p", { class: "muted" }, "Log in to see your balances."));
    const rows = await get("/api/v1/balances");
    balances = Object.fromEntries(rows.map((b) => [b.asset, b]));
    const mine = rows.filter((b) => b.asset === m.base || b.asset === m.quote)
      .concat(rows.filter((b) => b.asset !== m.base && b.asset !== m.quote && b.total.replace(/[0.]/g, "") !== ""));
    replace(balancesEl, table(["Asset", "Available", "Locked"], mine.map((b) => h("tr", { dataset: { asset: b.asset } },
      h("td", {}, b.asset), h("td", { class: "num", "data-testid": `available-${b.asset}` }, group(b.available)),
      h("td", { class: "num", "data-testid": `locked-${b.asset}` }, group(b.locked))))));
    form?.update();
  }

  function orderRow(o, cancel) {
    return h("tr", { dataset: { orderId: o.order_id } },
      h("td", {}, time(o.created_at)), h("td", { class: o.side === "buy" ? "up" : "down" }, o.side),
      h("td", {}, o.type.replace("_", " ")), h("td", { class: "num" }, o.price ? group(o.price) : "market"),
      h("td", { class: "num" }, o.quantity ?? (o.quote_quantity ? `${o.quote_quantity} ${m.quote}` : "")),
      h("td", { class: "num" }, o.filled), h("td", {}, cancel ? (o.stop_price ? `stop ${o.stop_price}` : o.status) : o.status),
      cancel ? h("td", {}, h("button", {
        type: "button", class: "btn small", "data-testid": "cancel", onclick: async (e) => {
          e.target.disabled = true;
          try { await del(`/api/v1/orders/${o.order_id}?market=${slug}`); } catch (err) { tabMsg(errorText(err)); }
          refreshPrivate();
        },
      }, "Cancel")) : null);
  }

  const tabNote = h("p", { class: "notice", hidden: true, role: "alert" });
  function tabMsg(text) { notify(tabNote, text); }

  async function renderTab() {
    for (const b of tabsEl.children) b.setAttribute("aria-selected", String(b.dataset.tab === tab));
    if (!signedIn()) return replace(tabBody, h("p", { class: "muted" }, h("a", { href: "/account/login" }, "Log in"), " to see your orders."));
    const head = ["Time", "Side", "Type", "Price", "Amount", "Filled", "Status"];
    if (tab === "open") {
      const all = openOrders.length ? h("button", {
        type: "button", class: "btn small danger", "data-testid": "cancel-all", onclick: async () => {
          const n = openOrders.length;
          if (!await confirmStep({ kind: "cancel-all", title: `Cancel all ${n} open order${n > 1 ? "s" : ""} on ${slug}?`,
            confirm: "Cancel all", danger: true, facts: [["Market", slug], ["Open orders", String(n), "confirm-count"]] })) return;
          try { await del(`/api/v1/orders?market=${slug}`); } catch (err) { tabMsg(errorText(err)); }
          refreshPrivate();
        },
      }, "Cancel all") : null;
      replace(tabBody, h("div", { class: "tabtools" }, all), tabNote,
        table([...head, ""], openOrders.map((o) => orderRow(o, true)), "No open orders"));
    } else if (tab === "history") {
      const r = await get(`/api/v1/orders/history?market=${slug}&limit=50`);
      if (tab !== "history") return;
      replace(tabBody, table(head, r.orders.map((o) => orderRow(o, false)), "No orders yet"));
    } else {
      replace(tabBody, table(["Time", "Side", "Price", "Amount", "Fee", "Role"], fills.map((f) => h("tr", { class: "fill" },
        h("td", {}, time(f.time)), h("td", { class: f.side === "buy" ? "up" : "down" }, f.side),
        h("td", { class: "num" }, group(f.price)), h("td", { class: "num" }, f.quantity),
        h("td", { class: "num" }, `${f.fee} ${f.fee_asset}`), h("td", {}, f.role))), "No fills yet"));
    }
  }
  for (const [k, label] of Object.entries(tabs)) {
    tabsEl.append(h("button", { type: "button", role: "tab", "data-tab": k, onclick: () => { tab = k; renderTab(); } }, label));
  }

  async function loadFills() {
    const r = await get(`/api/v1/my-trades?market=${slug}&limit=50`);
    const seen = new Set(fills.map((f) => f.trade_id));
    fills = [...fills, ...r.trades.filter((t) => !seen.has(t.trade_id))].sort((a, b) => b.trade_id - a.trade_id);
  }

  let refreshing = null;
  function refreshPrivate() {
    if (!signedIn()) { loadBalances(); renderTab(); return; }
    if (refreshing) return;
    refreshing = setTimeout(async () => {
      refreshing = null;
      try {
        openOrders = await get(`/api/v1/orders/open?market=${slug}`);
        await loadBalances();
        await renderTab();
      } catch (err) { tabMsg(errorText(err)); }
    }, 50);
  }

  // ---------------------------------------------------------------- order form
  const form = signedIn() ? orderForm() : null;
  if (!form) {
    replace(formBox, h("div", { class: "login-cta" }, h("p", {}, "Log in to trade ", m.symbol, "."),
      h("a", { class: "btn primary", href: "/account/login" }, "Log in"), " ", h("a", { class: "btn", href: "/account/signup" }, "Sign up")));
  }

  function orderForm() {
    let side = "buy";
    let type = "limit";
    const sideBtns = ["buy", "sell"].map((s) => h("button", { type: "button", class: `side ${s}`, "data-side": s, onclick: () => pickSide(s) },
      s === "buy" ? `Buy (B)` : `Sell (S)`));
    const typeBtns = [["limit", "Limit"], ["market", "Market"], ["stop_limit", "Stop-limit"]].map(([t, l]) =>
      h("button", { type: "button", class: "btn small", "data-type": t, onclick: () => pickType(t) }, l));
    const stop = h("input", { name: "stop_price", inputmode: "decimal", autocomplete: "off", placeholder: m.fmtPrice(0n) });
    const price = h("input", { name: "price", inputmode: "decimal", autocomplete: "off", placeholder: m.fmtPrice(0n) });
    const amount = h("input", { name: "amount", inputmode: "decimal", autocomplete: "off", placeholder: m.fmtQty(0n) });
    const unit = h("select", { name: "unit", "aria-label": "Amount in" },
      h("option", { value: "base" }, m.base), h("option", { value: "quote" }, m.quote));
    const postOnly = h("input", { type: "checkbox", name: "post_only" });
    const ioc = h("input", { type: "checkbox", name: "ioc" });
    postOnly.addEventListener("change", () => { if (postOnly.checked) ioc.checked = false; });
    ioc.addEventListener("change", () => { if (ioc.checked) postOnly.checked = false; });
    const pcts = h("div", { class: "seg pcts" }, [25, 50, 75, 100].map((p) =>
      h("button", { type: "button", class: "btn small", "data-pct": p, onclick: () => percent(BigInt(p)) }, `${p}%`)));
    const total = h("p", { class: "total muted", "data-testid": "total" });
    const avail = h("p", { class: "avail muted" });
    const msg = h("p", { class: "notice", hidden: true, role: "status", "data-testid": "order-msg" });
    const submit = h("button", { type: "submit", class: "btn primary wide", "data-testid": "submit" });
    const stopRow = h("label", {}, `Stop (${m.quote})`, stop);
    const priceRow = h("label", {}, `Price (${m.quote})`, price);
    const flags = h("div", { class: "row flags" }, h("label", { class: "check" }, postOnly, "Post-only"), h("label", { class: "check" }, ioc, "IOC"));
    const el = h("form", { class: "orderform", "data-testid": "order-form", autocomplete: "off" },
      h("div", { class: "sides" }, sideBtns), h("div", { class: "seg" }, typeBtns),
      stopRow, priceRow, h("label", {}, "Amount", h("div", { class: "with-unit" }, amount, unit)),
      pcts, flags, avail, total, msg, submit);
    replace(formBox, el);

    function pickSide(s) {
      side = s;
      for (const b of sideBtns) b.classList.toggle("active", b.dataset.side === s);
      el.dataset.side = s;
      update();
    }
    function pickType(t) {
      type = t;
      for (const b of typeBtns) b.classList.toggle("active", b.dataset.type === t);
      stopRow.hidden = t !== "stop_limit";
      priceRow.hidden = t === "market";
      flags.hidden = t !== "limit";
      update();
    }

    function bal(asset) {
      const b = balances[asset];
      return b ? parseUnits(b.available, assets[asset]) : 0n;
    }
    function bestAsk() {
      const book = feed.book(depthChannel);
      let best = null;
      for (const p of book?.asks.keys() || []) { const u = m.price(p); if (best === null || u < best) best = u; }
      return best;
    }
    function bestBid() {
      const book = feed.book(depthChannel);
      let best = null;
      for (const p of book?.bids.keys() || []) { const u = m.price(p); if (best === null || u > best) best = u; }
      return best;
    }
    function refPrice() {
      if (type === "market") return side === "buy" ? bestAsk() : bestBid();
      return price.value ? m.price(price.value) : null;
    }

    function percent(p) {
      notify(msg, "");
      try {
        if (side === "buy") {
          const spend = (bal(m.quote) * p) / 100n;
          if (unit.value === "quote") { amount.value = m.fmtQuote(spend); return update(); }
          const px = refPrice();
          if (!px) return notify(msg, "Enter a price first");
          amount.value = m.fmtQty(m.qtyFor(spend, px));
        } else {
          const qty = m.qtyOfBase((bal(m.base) * p) / 100n);
          if (unit.value === "quote") {
            const px = refPrice();
            if (!px) return notify(msg, "Enter a price first");
            amount.value = m.fmtQuote(m.notional(px, qty));
          } else {
            amount.value = m.fmtQty(qty);
          }
        }
      } catch (e) {
        notify(msg, e.message);
      }
      update();
    }

    /** The order request from the form: every amount parsed to base units and written back canonically. */
    function request() {
      const body = { market: m.symbol, side };
      const byQuote = unit.value === "quote";
      if (type === "market") {
        body.type = "market";
        if (byQuote) {
          if (side !== "buy") throw new MoneyError(`a market sell is given in ${m.base}`);
          body.quote_quantity = m.fmtQuote(m.quoteAmount(amount.value));
        } else {
          body.quantity = m.fmtQty(lotChecked(m.qty(amount.value)));
        }
        return body;
      }
      const px = m.price(price.value);
      if (px <= 0n) throw new MoneyError("enter a price");
      if (px % m.tick) throw new MoneyError(`the price must be a multiple of ${m.fmtPrice(m.tick)}`);
      body.price = m.fmtPrice(px);
      const qty = byQuote ? m.qtyFor(m.quoteAmount(amount.value), px) : lotChecked(m.qty(amount.value));
      if (qty <= 0n) throw new MoneyError("the amount is too small");
      body.quantity = m.fmtQty(qty);
      if (type === "stop_limit") {
        const sp = m.price(stop.value);
        if (sp <= 0n || sp % m.tick) throw new MoneyError(`the stop price must be a multiple of ${m.fmtPrice(m.tick)}`);
        body.type = "stop_limit";
        body.stop_price = m.fmtPrice(sp);
      } else {
        body.type = postOnly.checked ? "post_only" : ioc.checked ? "ioc" : "limit";
      }
      return body;
    }
    function lotChecked(q) {
      if (q % m.lot) throw new MoneyError(`the amount must be a multiple of ${m.fmtQty(m.lot)}`);
      return q;
    }

    function update() {
      const byQuote = unit.value === "quote";
      unit.options[1].disabled = type === "market" && side === "sell";
      if (unit.options[1].disabled && byQuote) unit.value = "base";
      const spendAsset = side === "buy" ? m.quote : m.base;
      const b = balances[spendAsset];
      avail.textContent = `Available: ${b ? group(b.available) : "0"} ${spendAsset}`;
      submit.textContent = `${side === "buy" ? "Buy" : "Sell"} ${m.base}`;
      submit.className = `btn wide ${side}`;
      total.textContent = "";
      try {
        const px = refPrice();
        if (!amount.value || !px) return;
        if (byQuote) {
          total.textContent = `≈ ${m.fmtQty(m.qtyFor(m.quoteAmount(amount.value), px))} ${m.base}`;
        } else {
          total.textContent = `Total ≈ ${group(m.fmtQuote(m.notional(px, m.qty(amount.value))))} ${m.quote}`;
        }
      } catch (e) {
        total.textContent = e instanceof MoneyError ? e.message : "";
      }
    }
    for (const i of [price, amount, stop, unit]) i.addEventListener("input", update);

    el.addEventListener("submit", async (e) => {
      e.preventDefault();
      notify(msg, "");
      let body;
      try { body = request(); } catch (err) { return notify(msg, err.message); }
      submit.disabled = true;
      try {
        const o = await post("/api/v1/orders", body);
        notify(msg, `Order ${o.order_id} ${o.status.replace("_", " ")}: ${o.side} ${o.quantity ?? o.quote_quantity}`, "ok");
        el.dataset.lastOrder = JSON.stringify(o);
        amount.value = "";
        refreshPrivate();
      } catch (err) {
        notify(msg, errorText(err));
      } finally {
        submit.disabled = false;
        update();
      }
    });
    el.addEventListener("keydown", (e) => {
      if (e.key === "Escape") { el.reset(); notify(msg, ""); update(); e.target.blur?.(); }
    });

    pickSide("buy");
    pickType("limit");
    return {
      fillPrice(p) {
        if (type === "market") pickType("limit");
        price.value = p;
        update();
        amount.focus();
      },
      key(k) {
        pickSide(k === "b" ? "buy" : "sell");
        const field = type === "market" ? amount : price;
        field.focus();
        field.select();
      },
      update,
    };
  }

  function onKey(e) {
    if (e.ctrlKey || e.metaKey || e.altKey || !form) return;
    const k = e.key.toLowerCase();
    if (k !== "b" && k !== "s") return;
    const t = e.target;
    const typing = t instanceof HTMLElement && t.matches("input:not([type=checkbox]), textarea, select");
    if (typing && !t.closest(".orderform")) return;
    e.preventDefault();
    form.key(k);
  }
  document.addEventListener("keydown", onKey);
  cleanup.push(() => document.removeEventListener("keydown", onKey));

  // ---------------------------------------------------------------- live data
  cleanup.push(feed.subscribe(depthChannel, (msg) => { if (msg.type !== "gap") scheduleBook(); }));
  cleanup.push(feed.subscribe(`trades:${m.symbol}`, (msg) => {
    tape.unshift(msg.data);
    tape = tape.slice(0, 100);
    lastPrice = msg.data.price;
    renderTape();
    scheduleBook();
  }));
  cleanup.push(feed.subscribe(`ticker:${m.symbol}`, (msg) => showTicker(msg.data)));
  if (signedIn()) {
    cleanup.push(feed.subscribe("orders", () => refreshPrivate()));
    cleanup.push(feed.subscribe("balances", () => refreshPrivate()));
    cleanup.push(feed.subscribe("fills", (msg) => {
      const f = msg.data;
      if (f.market !== m.symbol) return refreshPrivate();
      if (!fills.some((x) => x.trade_id === f.trade_id)) {
        fills.unshift({ trade_id: f.trade_id, time: Number(BigInt(f.ts) / 1_000_000n), side: f.side, price: f.price,
          quantity: f.qty, fee: f.fee, fee_asset: f.fee_asset, role: f.role, order_id: f.order_id });
      }
      refreshPrivate();
    }));
  }

  async function loadPublic() {
    const [trades, tickers] = await Promise.all([get(`/api/v1/trades?market=${slug}&limit=100`), get(`/api/v1/ticker?market=${slug}`)]);
    tape = trades;
    lastPrice = trades[0]?.price ?? null;
    renderTape();
    showTicker(tickers[0]);
    scheduleBook();
  }

  async function loadAll() {
    await loadPublic();
    if (signedIn()) await loadFills();
    refreshPrivate();
  }

  function onState(e) {
    if (e.detail.state === "live" && e.detail.was === "stale") {
      loadAll().catch(() => {});
      loadCandles().catch(() => {});
    }
  }
  feed.addEventListener("state", onState);
  cleanup.push(() => feed.removeEventListener("state", onState));

  pickInterval("1m");
  renderTab();
  await loadAll().catch((err) => tabMsg(errorText(err)));
  return () => { for (const f of cleanup.reverse()) f(); };
}
