// Orders as the trade and futures pages list them: one row per order (a stop or take-profit order
// waiting on its trigger says so), each open one with its Cancel button, and "Cancel all" for the
// markets shown, confirmed first. Amounts are the API's decimal strings, never floats.
import { del } from "./api.js";
import { confirmStep } from "./confirm.js";
import { h, time, toast } from "./dom.js";
import { group } from "./money.js";

export const TYPE_LABELS = { limit: "limit", market: "market", ioc: "IOC", fok: "FOK", post_only: "post-only",
  stop_limit: "stop-limit", take_profit_limit: "take-profit", stop_market: "stop-market",
  take_profit_market: "take-profit" };

export const ORDER_HEAD = ["Time", "Market", "Side", "Type", "Price", "Amount", "Filled", "Status"];

/** A market's symbol as a query parameter ("BTC/USDT" -> "BTC-USDT"). */
const slug = (market) => market.replace("/", "-");

/** A table cell that names its column (shown above the value when the table is stacked on a phone). */
export function td(label, content, attrs = {}) {
  return h("td", { "data-label": label, ...attrs }, content);
}

/** An order's row. `om` is its market's arithmetic (qty(), base, quote); with `open`, a Cancel button
 * that tells the result as a toast (a refusal through `errorText(err)`), then calls `changed()`. */
export function orderRow(o, om, { open = false, errorText = (err) => err?.reason || "Not accepted", changed = () => {} } = {}) {
  const amount = o.quantity ? `${group(o.quantity)} ${om.base}` : o.quote_quantity ? `${group(o.quote_quantity)} ${om.quote}` : "";
  const price = o.price ? group(o.price) : "market";
  const status = open && o.stop_price ? `${/take_profit/.test(o.type) ? "trigger" : "stop"} ${group(o.stop_price)}`
    : o.status.replace("_", " ");
  return h("tr", { dataset: { orderId: o.order_id, market: o.market, type: o.type }, "data-testid": open ? "open-order" : "order" },
    td("Time", time(o.created_at)), td("Market", o.market, { class: "mkt" }),
    td("Side", o.side, { class: o.side === "buy" ? "up" : "down" }),
    td("Type", TYPE_LABELS[o.type] || o.type), td("Price", price, { class: "num" }),
    td("Amount", amount, { class: "num" }), td("Filled", group(o.filled), { class: "num" }),
    td("Status", status),
    open ? td("", h("button", {
      type: "button", class: "btn small", "data-testid": "cancel",
      "aria-label": `Cancel ${o.side} ${amount} at ${price} on ${o.market}`, onclick: async (e) => {
        e.target.disabled = true;
        try {
          const done = await del(`/api/v1/orders/${o.order_id}?market=${slug(o.market)}`);
          const part = om.qty(done.filled || "0") > 0n ? ` (${group(done.filled)} ${om.base} had filled)` : "";
          toast(`Order cancelled: ${o.side} ${amount} at ${price} on ${o.market}${part}`, "info");
        } catch (err) {
          toast(errorText(err, o), "error");
        }
        changed();
      },
    }, "Cancel"), { class: "act" }) : null);
}

/** Cancel every open order on each of `markets`; the count told as a toast. */
export async function cancelAll(markets, { errorText = (err) => err?.reason || "Not accepted" } = {}) {
  let n = 0;
  for (const mk of markets) {
    try {
      const r = await del(`/api/v1/orders?market=${slug(mk)}`);
      n += r.cancelled.length;
    } catch (err) {
      toast(errorText(err, mk), "error");
    }
  }
  toast(n ? `Cancelled ${n} order${n === 1 ? "" : "s"}` : "No open orders to cancel", "info");
  return n;
}

/** "Cancel all" for `orders` (the open orders shown) on `only` (one market, or null for every market
 * they are on): confirmed first, then `changed()`. Null when there is nothing to cancel. */
export function cancelAllButton(orders, only, { errorText, changed = () => {} } = {}) {
  if (!orders.length) return null;
  return h("button", {
    type: "button", class: "btn small danger", "data-testid": "cancel-all", onclick: async () => {
      const n = orders.length;
      const where = only || "every market";
      if (!await confirmStep({ kind: "cancel-all", title: `Cancel all ${n} open order${n > 1 ? "s" : ""} on ${where}?`,
        confirm: "Cancel all", danger: true, facts: [["Market", where], ["Open orders", String(n), "confirm-count"]] })) return;
      await cancelAll(only ? [only] : [...new Set(orders.map((o) => o.market))], { errorText });
      changed();
    },
  }, only ? `Cancel all ${only}` : "Cancel all");
}
