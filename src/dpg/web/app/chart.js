// The candlestick chart with volume: TradingView Lightweight Charts (its attribution logo stays on).
// Prices are drawn from the API's decimal strings; the chart only displays them, no amount
// entered by a user goes through it.
import { CandlestickSeries, ColorType, HistogramSeries, createChart } from "lightweight-charts";
import { get } from "./api.js";
import { h } from "./dom.js";
import { feed } from "./feed.js";
import { group } from "./money.js";

const INTERVALS = ["1m", "5m", "15m", "1h", "4h", "1d"];

const UP = "#26a69a";
const DOWN = "#ef5350";

/** A price on the axis, the crosshair and the last-price label, with thousands separators. */
export function axisPrice(price, decimals) {
  return group(Number(price).toFixed(decimals));
}

export class CandleChart {
  /** `market.price_decimals`: the places of a price on the axis. */
  constructor(el, market) {
    this.chart = createChart(el, {
      autoSize: true,
      layout: { background: { type: ColorType.Solid, color: "#12161c" }, textColor: "#9aa4b2", attributionLogo: true },
      grid: { vertLines: { color: "#1d232c" }, horzLines: { color: "#1d232c" } },
      timeScale: { timeVisible: true, secondsVisible: false, borderColor: "#2a313c" },
      rightPriceScale: { borderColor: "#2a313c" },
      crosshair: { mode: 0 },
    });
    const minMove = 10 ** -market.price_decimals;
    this.candles = this.chart.addSeries(CandlestickSeries, {
      upColor: UP, downColor: DOWN, borderVisible: false, wickUpColor: UP, wickDownColor: DOWN,
      priceFormat: { type: "custom", minMove, formatter: (p) => axisPrice(p, market.price_decimals) },
    });
    this.volume = this.chart.addSeries(HistogramSeries, {
      priceScaleId: "", priceFormat: { type: "volume" }, lastValueVisible: false, priceLineVisible: false,
    });
    this.volume.priceScale().applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
    this.el = el;
    this.nameLogo();
  }

  /** The attribution logo is a link with only a picture: give it a name a screen reader can say. */
  nameLogo() {
    for (const a of this.el.querySelectorAll("a:not([aria-label])")) a.setAttribute("aria-label", "Charts by TradingView");
  }

  static bar(c) {
    return { time: Math.floor(c.time / 1000), open: +c.open, high: +c.high, low: +c.low, close: +c.close };
  }

  static vol(c) {
    return { time: Math.floor(c.time / 1000), value: +c.volume, color: +c.close >= +c.open ? `${UP}80` : `${DOWN}80` };
  }

  set(candles) {
    const rows = [...candles].sort((a, b) => a.time - b.time);
    this.candles.setData(rows.map(CandleChart.bar));
    this.volume.setData(rows.map(CandleChart.vol));
    this.chart.timeScale().scrollToRealTime();
    this.nameLogo();
  }

  update(c) {
    try {
      this.candles.update(CandleChart.bar(c));
      this.volume.update(CandleChart.vol(c));
    } catch {
      // an update older than the last bar (after a resync): the next full load corrects it
    }
  }

  remove() {
    this.chart.remove();
  }
}

/** The chart panel of a market (spot or perpetual): timeframe buttons over the candles, loaded over
 * REST and kept live by the feed's candles channel of the chosen timeframe. */
export class ChartPanel {
  /** `symbol`: the market's symbol ("BTC/USDT", "BTC-PERP"); `priceDecimals`: a price's places. */
  constructor(symbol, priceDecimals) {
    this.symbol = symbol;
    this.box = h("div", { class: "chart", "data-testid": "chart" });
    this.tfs = h("div", { class: "seg", role: "group", "aria-label": "Timeframe" });
    this.el = h("div", { class: "chartp panel" }, this.tfs, this.box);
    this.interval = "1m";
    this.unsub = null;
    this.chart = null;
    for (const iv of INTERVALS) {
      this.tfs.append(h("button", { type: "button", class: "btn small", "data-interval": iv, onclick: () => this.pick(iv) }, iv));
    }
    this.priceDecimals = priceDecimals;
  }

  /** Draws the chart (once `el` is in the page) at the 1m timeframe; returns the cleanup. */
  start() {
    this.chart = new CandleChart(this.box, { price_decimals: this.priceDecimals });
    this.pick("1m");
    return () => {
      if (this.unsub) this.unsub();
      this.chart.remove();
    };
  }

  /** The candles of the chosen timeframe from the API (after a resync too). */
  async load() {
    const market = encodeURIComponent(this.symbol.replace("/", "-"));
    this.chart.set(await get(`/api/v1/candles?market=${market}&interval=${this.interval}&limit=500`));
  }

  pick(iv) {
    this.interval = iv;
    for (const b of this.tfs.children) {
      b.classList.toggle("active", b.dataset.interval === iv);
      b.setAttribute("aria-pressed", String(b.dataset.interval === iv));
    }
    if (this.unsub) this.unsub();
    this.unsub = feed.subscribe(`candles:${this.symbol}:${iv}`, (msg) => { for (const c of msg.data || []) this.chart.update(c); });
    this.load().catch(() => {});
  }
}
