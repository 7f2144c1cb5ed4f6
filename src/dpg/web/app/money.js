// Money in the page: decimal strings <-> integer base units (BigInt), never through floats.
// Amounts typed by a user may use "," or "." as the decimal separator; too many decimals is an
// error, never a silent rounding.

export class MoneyError extends Error {}

const NUMBER = /^(\d*)(?:[.,](\d*))?$/;

/** Units of 10^-decimals in `text` ("0,5" with 8 decimals -> 50000000n). */
export function parseUnits(text, decimals) {
  const s = String(text ?? "").trim().replace(/[\s_\u00a0\u202f]/g, "");
  const m = NUMBER.exec(s);
  if (!m || (m[1] === "" && (m[2] ?? "") === "")) throw new MoneyError("not a number");
  const whole = m[1] || "0";
  const frac = m[2] ?? "";
  if (frac.length > decimals) {
    if (/[1-9]/.test(frac.slice(decimals))) throw new MoneyError(`at most ${decimals} decimals`);
  }
  return BigInt(whole + frac.slice(0, decimals).padEnd(decimals, "0"));
}

/** `units` (BigInt) as a decimal string with exactly `decimals` places ("." separator). */
export function formatUnits(units, decimals) {
  const neg = units < 0n;
  let digits = (neg ? -units : units).toString().padStart(decimals + 1, "0");
  const out = decimals ? `${digits.slice(0, -decimals)}.${digits.slice(-decimals)}` : digits;
  return neg ? `-${out}` : out;
}

/** Number of decimals of a step such as "0.0100" -> 4 (as written) ; "1" -> 0. */
export function decimalsOf(step) {
  const i = String(step).indexOf(".");
  return i < 0 ? 0 : String(step).length - i - 1;
}

/** Re-express a decimal string with `decimals` places (padding or dropping zeros only). */
export function normalize(text, decimals) {
  return formatUnits(parseUnits(text, decimals), decimals);
}

/** Floor of units to a multiple of step. */
export function floorTo(units, step) {
  return step > 0n ? (units / step) * step : units;
}

/** Ceiling of units to a multiple of step. */
export function ceilTo(units, step) {
  return step > 0n ? ((units + step - 1n) / step) * step : units;
}

/** units scaled from one number of decimals to another, rounded down. */
export function rescale(units, from, to) {
  return to >= from ? units * 10n ** BigInt(to - from) : units / 10n ** BigInt(from - to);
}

/** Thousands separators for display only ("1234567.50" -> "1,234,567.50"). */
export function group(text) {
  const [w, f] = String(text).split(".");
  const g = w.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return f === undefined ? g : `${g}.${f}`;
}

/**
 * The change from `from` to `to` (BigInts in the same units) in percent with `places` decimals,
 * rounded half away from zero, signed ("+1.25", "-0.40", "0.00"); null when `from` is 0.
 */
export function percentChange(from, to, places = 2) {
  if (from === 0n) return null;
  const num = (to - from) * 100n * 10n ** BigInt(places);
  const neg = (num < 0n) !== (from < 0n);
  const a = num < 0n ? -num : num;
  const b = from < 0n ? -from : from;
  const q = (2n * a + b) / (2n * b);
  return q === 0n ? formatUnits(0n, places) : `${neg ? "-" : "+"}${formatUnits(q, places)}`;
}

/** A market's arithmetic, from an entry of GET /api/v1/markets and the assets' decimals. */
export class MarketMath {
  constructor(market, assetDecimals) {
    this.symbol = market.market;
    this.base = market.base;
    this.quote = market.quote;
    this.pd = market.price_decimals;
    this.qd = market.quantity_decimals;
    this.baseDecimals = assetDecimals[market.base];
    this.quoteDecimals = assetDecimals[market.quote];
    this.tick = parseUnits(market.tick_size, this.pd);
    this.lot = parseUnits(market.lot_size, this.qd);
    this.minNotional = parseUnits(market.min_notional, this.quoteDecimals);
  }
  price(text) { return parseUnits(text, this.pd); }
  qty(text) { return parseUnits(text, this.qd); }
  quoteAmount(text) { return parseUnits(text, this.quoteDecimals); }
  fmtPrice(units) { return formatUnits(units, this.pd); }
  fmtQty(units) { return formatUnits(units, this.qd); }
  fmtQuote(units) { return formatUnits(units, this.quoteDecimals); }
  /** price * qty in quote base units (rounded down). */
  notional(price, qty) {
    return rescale(price * qty, this.pd + this.qd, this.quoteDecimals);
  }
  /** The quantity (a multiple of the lot) that `quote` buys at `price`, rounded down. */
  qtyFor(quote, price) {
    if (price <= 0n) return 0n;
    const qty = (quote * 10n ** BigInt(this.pd + this.qd)) / (price * 10n ** BigInt(this.quoteDecimals));
    return floorTo(qty, this.lot);
  }
  /** A balance of the base asset as a quantity (a multiple of the lot), rounded down. */
  qtyOfBase(baseUnits) {
    return floorTo(rescale(baseUnits, this.baseDecimals, this.qd), this.lot);
  }
}

/** units rescaled from one number of decimals to fewer, rounded half up (display of an average or
 * a total in a message; amounts that are sent are never rounded). */
export function roundTo(units, from, to) {
  if (to >= from) return rescale(units, from, to);
  const f = 10n ** BigInt(from - to);
  return units < 0n ? -((-units + f / 2n) / f) : (units + f / 2n) / f;
}

/** The places each asset is shown with: the finest step it trades in (the lot where it is a
 * market's base, the tick where it is the quote) plus 4 places, room for a fee of one basis point
 * on that step; never more than the asset's own decimals. An asset no market lists: at most 8.
 * With the genesis markets: BTC 8, ETH 8 (not its 18), USDT and USD 6. */
export function displayPlaces(markets, assetDecimals) {
  const finest = {};
  for (const mk of markets) {
    for (const [asset, places] of [[mk.base, mk.quantity_decimals], [mk.quote, mk.price_decimals]]) {
      finest[asset] = Math.max(finest[asset] ?? 0, places);
    }
  }
  const out = {};
  for (const [asset, decimals] of Object.entries(assetDecimals)) {
    out[asset] = Math.min(decimals, asset in finest ? finest[asset] + 4 : 8);
  }
  return out;
}

/** A decimal string from the API shown with `places` decimals (rounded down: never more than
 * there is) and thousands separators. */
export function shown(text, places) {
  const s = String(text);
  const neg = s.startsWith("-");
  const digits = neg ? s.slice(1) : s;
  const d = decimalsOf(digits);
  const out = group(formatUnits(rescale(parseUnits(digits, d), d, places), places));
  return neg ? `-${out}` : out;
}
