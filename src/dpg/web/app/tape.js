// The recent trades panel of a market (spot or perpetual): price, amount and time of the latest
// trades, newest first, coloured by the taker's side; loaded over REST, then kept live by the
// feed's trades channel.
import { get } from "./api.js";
import { h, replace, time } from "./dom.js";
import { feed } from "./feed.js";
import { group } from "./money.js";

const SHOWN = 40;
const KEPT = 100;

/** `m`: the market (symbol, base, quote). `onTrade(trade)`: each live trade, after it is shown. */
export class TapePanel {
  constructor(m, { onTrade = () => {} } = {}) {
    this.m = m;
    this.onTrade = onTrade;
    this.trades = [];
    // scrollable regions take the focus, so a keyboard can scroll them (axe: scrollable-region-focusable)
    this.list = h("div", { class: "tape", "data-testid": "trades", tabindex: "0", role: "region", "aria-label": "Recent trades" });
    this.el = h("div", { class: "tradesp panel" }, h("h2", {}, "Recent trades"),
      h("div", { class: "levels-head" }, h("span", {}, `Price (${m.quote})`), h("span", {}, `Amount (${m.base})`),
        h("span", {}, "Time")), this.list);
  }

  /** The latest trade's price (a decimal string), or null before any. */
  last() {
    return this.trades[0]?.price ?? null;
  }

  render() {
    replace(this.list, this.trades.slice(0, SHOWN).map((t) => h("div", { class: `row ${t.taker_side === "sell" ? "down" : "up"}` },
      h("span", {}, group(t.price)), h("span", {}, group(t.quantity)), h("span", { class: "muted" }, time(t.time)))));
  }

  /** The latest trades from the API (after a resync too). */
  async load() {
    this.trades = await get(`/api/v1/trades?market=${encodeURIComponent(this.m.symbol.replace("/", "-"))}&limit=${KEPT}`);
    this.render();
  }

  /** Follows the trades channel; returns the unsubscribe. */
  subscribe() {
    return feed.subscribe(`trades:${this.m.symbol}`, (msg) => {
      this.trades.unshift(msg.data);
      this.trades = this.trades.slice(0, KEPT);
      this.render();
      this.onTrade(msg.data);
    });
  }
}
