// The order book panel of a market (spot or perpetual): asks above, bids below, depth bars of the
// cumulative amount, price grouping by 1, 10 or 100 ticks, the last price and the spread between
// them; a click on a level hands its price to the page. Kept live by the feed's depth channel.
import { h, replace } from "./dom.js";
import { feed } from "./feed.js";
import { ceilTo, floorTo, group } from "./money.js";

const LEVELS = 12;

/** `m`: the market's arithmetic (symbol, base, quote, tick, price(), qty(), fmtPrice(), fmtQty()).
 * `onPrice(text)`: a level was clicked. `el` is the panel to place in the page. */
export class BookPanel {
  constructor(m, { onPrice = () => {} } = {}) {
    this.m = m;
    this.channel = `depth:${m.symbol}`;
    this.lastPrice = null;
    this.dirty = false;
    this.grouping = h("select", { name: "grouping", "aria-label": "Price grouping" },
      [1n, 10n, 100n].map((f) => h("option", { value: String(f) }, m.fmtPrice(m.tick * f))));
    this.asksEl = h("div", { class: "levels asks", "data-testid": "asks" });
    this.bidsEl = h("div", { class: "levels bids", "data-testid": "bids" });
    this.midEl = h("div", { class: "mid" });
    this.el = h("div", { class: "book panel" },
      h("div", { class: "head" }, h("h2", {}, "Order book"), this.grouping),
      h("div", { class: "levels-head" }, h("span", {}, `Price (${m.quote})`), h("span", {}, `Amount (${m.base})`),
        h("span", {}, `Total (${m.base})`)),
      this.asksEl, this.midEl, this.bidsEl);
    this.grouping.addEventListener("change", () => this.render());
    for (const side of [this.asksEl, this.bidsEl]) {
      side.addEventListener("click", (e) => {
        const b = e.target.closest(".level");
        if (b) onPrice(b.dataset.price);
      });
    }
  }

  /** The book as the feed holds it (Maps of price string -> quantity string), or undefined. */
  book() {
    return feed.book(this.channel);
  }

  /** Follows the depth channel; returns the unsubscribe. */
  subscribe() {
    return feed.subscribe(this.channel, (msg) => { if (msg.type !== "gap") this.schedule(); });
  }

  /** The last traded price shown between asks and bids (a decimal string, or null). */
  setLast(price) {
    this.lastPrice = price;
    this.schedule();
  }

  schedule() {
    if (!this.dirty) { this.dirty = true; requestAnimationFrame(() => this.render()); }
  }

  grouped(levels, factor, up) {
    const { m } = this;
    const step = m.tick * factor;
    const out = new Map();
    for (const [p, q] of levels) {
      const price = up ? ceilTo(m.price(p), step) : floorTo(m.price(p), step);
      out.set(price, (out.get(price) || 0n) + m.qty(q));
    }
    return [...out.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  }

  levelRows(levels, side) {
    const { m } = this;
    let cum = 0n;
    const rows = levels.map(([p, q]) => { cum += q; return [p, q, cum]; });
    const max = cum > 0n ? cum : 1n;
    return rows.map(([p, q, c]) => {
      const pct = Number((c * 1000n) / max) / 10;
      // a click takes the price; not a tab stop each (the skip link and the form come first)
      return h("button", {
        type: "button", tabindex: "-1", class: `level ${side}`, "data-price": m.fmtPrice(p), style: `--depth:${pct}%`,
        title: "Use this price",
      }, h("span", { class: "p" }, group(m.fmtPrice(p))), h("span", {}, group(m.fmtQty(q))), h("span", {}, group(m.fmtQty(c))));
    });
  }

  render() {
    this.dirty = false;
    const book = this.book();
    if (!book) return;
    const { m } = this;
    const factor = BigInt(this.grouping.value);
    const asks = this.grouped(book.asks, factor, true).slice(0, LEVELS);
    const bids = this.grouped(book.bids, factor, false).reverse().slice(0, LEVELS);
    replace(this.asksEl, this.levelRows(asks, "ask").reverse());
    replace(this.bidsEl, this.levelRows(bids, "bid"));
    const spread = asks.length && bids.length ? m.fmtPrice(asks[0][0] - bids[0][0]) : null;
    replace(this.midEl, h("span", { class: "last" }, this.lastPrice ? group(this.lastPrice) : "—"),
      spread ? h("small", {}, `spread ${group(spread)}`) : null);
  }
}
