// The candlestick chart with volume: TradingView Lightweight Charts (its attribution logo stays on).
// Prices are drawn from the API's decimal strings; the chart only displays them, no amount
// entered by a user goes through it.
import { CandlestickSeries, ColorType, HistogramSeries, createChart } from "lightweight-charts";
import { group } from "./money.js";

const UP = "#26a69a";
const DOWN = "#ef5350";

/** A price on the axis, the crosshair and the last-price label, with thousands separators. */
export function axisPrice(price, decimals) {
  return group(Number(price).toFixed(decimals));
}

export class CandleChart {
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
