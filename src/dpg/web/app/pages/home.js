// The home page for a visitor (someone not logged in, at "/"): what DPG is, the markets with their
// last price and 24 h change (fetched, then live over the feed's ticker channels), and how to
// start: sign up, secure the account, deposit, trade, check the proof. A logged-in user at "/"
// gets the trade page instead (router.js).
import { get, markets as loadMarkets } from "../api.js";
import { errorText, h, notify, replace } from "../dom.js";
import { feed } from "../feed.js";
import { MarketMath, group, percentChange } from "../money.js";
import { demoNotice } from "./login.js";

/** The ticker's cells of one market: last price, 24 h change in quote and in percent, volume. */
function tickerCells(m, t, cells) {
  const open = t?.open ? m.price(t.open) : null;
  const last = t?.last ? m.price(t.last) : null;
  const change = open !== null && last !== null ? last - open : null;
  const dir = change === null || change === 0n ? "" : change < 0n ? "down" : "up";
  replace(cells.last, last === null ? "—" : `${group(m.fmtPrice(last))} ${m.quote}`);
  cells.last.className = `num ${dir}`;
  replace(cells.change, change === null ? "—" : `${change > 0n ? "+" : ""}${group(m.fmtPrice(change))}`);
  cells.change.className = `num ${dir}`;
  const pct = change === null ? null : percentChange(open, last);
  replace(cells.pct, pct === null ? "—" : `${pct} %`);
  cells.pct.className = `num ${dir}`;
  replace(cells.volume, t ? `${group(t.volume)} ${m.base}` : "—");
}

export async function mount(root) {
  const cleanup = [];
  const msg = h("p", { class: "notice", hidden: true, role: "alert" });
  const rows = h("tbody");
  const demo = h("div");
  root.append(h("div", { class: "home", "data-testid": "home" },
    h("section", { class: "panel h-intro", "aria-labelledby": "home-title" },
      h("h1", { id: "home-title" }, "DPG: a crypto exchange you can check"),
      h("p", { class: "lead" },
        "DPG matches orders in memory with one deterministic engine, in milliseconds, and writes every order to "
        + "its journal before it answers. Your coins are held on the chain in a vault contract that pays out only "
        + "with 3 of 5 independent signatures. And every day DPG publishes a proof of reserves that anyone can "
        + "check: your balance is in the published tree, and the vault holds at least the total."),
      h("p", { class: "row gap" },
        h("a", { href: "/account/signup", class: "btn primary", "data-testid": "home-signup" }, "Create an account"),
        h("a", { href: "/account/login", class: "btn" }, "Log in"),
        h("a", { href: "/proof", class: "btn" }, "See the proof of reserves")),
      demo),
    h("section", { class: "panel h-markets", "aria-labelledby": "home-markets" },
      h("h2", { id: "home-markets" }, "Markets"),
      h("div", { class: "scroll" },
        h("table", { class: "grid markets", "data-testid": "home-markets" },
          h("caption", { class: "sr-only" }, "Markets with their last price and 24 hour change"),
          h("thead", {}, h("tr", {},
            h("th", { scope: "col" }, "Market"), h("th", { scope: "col", class: "num" }, "Last price"),
            h("th", { scope: "col", class: "num" }, "24 h change"), h("th", { scope: "col", class: "num" }, "24 h %"),
            h("th", { scope: "col", class: "num vol" }, "24 h volume"))),
          rows)),
      msg),
    h("section", { class: "panel h-start", "aria-labelledby": "home-start" },
      h("h2", { id: "home-start" }, "Start in four steps"),
      h("ol", { class: "steps", "data-testid": "home-steps" },
        h("li", {}, h("a", { href: "/account/signup" }, "Sign up"), " with your e-mail address and a password, and "
          + "confirm the address with the link we mail you."),
        h("li", {}, "Turn on ", h("a", { href: "/account/security" }, "two-factor authentication"),
          ": withdrawals and new withdrawal addresses then need a code from your phone."),
        h("li", {}, h("a", { href: "/wallet" }, "Deposit"), ": the wallet page gives you a deposit address of your own "
          + "on each chain, with its QR code. Send ETH, USDT or WBTC (credited as BTC) to it from any wallet or "
          + "exchange; it is credited after the chain's confirmations, and you follow them on the page."),
        h("li", {}, h("a", { href: "/trade/BTC-USDT" }, "Trade"), ": limit, market and stop-limit orders on a live "
          + "order book. Then check your balance in the ", h("a", { href: "/proof" }, "proof of reserves"), ".")))));

  demoNotice().then((el) => { if (el) replace(demo, el); });

  let ms;
  try {
    const { markets, assets } = await loadMarkets();
    ms = markets.map((x) => new MarketMath(x, assets));
  } catch (e) {
    notify(msg, errorText(e));
    return () => {};
  }
  const cells = new Map();
  replace(rows, ms.map((m) => {
    const slug = m.symbol.replace("/", "-");
    const c = {
      last: h("td", { "data-testid": `last-${slug}` }),
      change: h("td", { "data-testid": `change-${slug}` }),
      pct: h("td", { "data-testid": `change-pct-${slug}` }),
      volume: h("td", { class: "num vol" }),
    };
    cells.set(m.symbol, c);
    tickerCells(m, null, c);
    return h("tr", { dataset: { market: m.symbol } },
      h("th", { scope: "row" }, h("a", { href: `/trade/${slug}` }, m.symbol)), c.last, c.change, c.pct, c.volume);
  }));
  const live = new Set(); // markets whose ticker came over the feed (its first message is the state)
  for (const m of ms) {
    cleanup.push(feed.subscribe(`ticker:${m.symbol}`, (x) => {
      live.add(m.symbol);
      tickerCells(m, x.data, cells.get(m.symbol));
    }));
  }
  try {
    for (const t of await get("/api/v1/ticker")) {
      const m = ms.find((x) => x.symbol === t.market);
      if (m && !live.has(m.symbol)) tickerCells(m, t, cells.get(m.symbol));
    }
  } catch (e) {
    notify(msg, errorText(e));
  }
  return () => { for (const f of cleanup) f(); };
}
