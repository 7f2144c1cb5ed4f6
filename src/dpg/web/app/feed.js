// The live feed: one WebSocket to /ws shared by every page. It re-authenticates and resubscribes
// after a dropped connection, keeps each order book in step (a depth snapshot, then updates whose
// prev_seq must equal the book's seq; on a gap it asks for a new snapshot), and reports whether the
// data on screen is live or stale: state "live" only while connected with every book synced.
import * as session from "./session.js";

export class Book {
  constructor(channel) {
    this.channel = channel;
    this.seq = null; // null: waiting for a snapshot
    this.bids = new Map(); // price string -> quantity string
    this.asks = new Map();
  }
  reset(msg) {
    this.seq = msg.seq;
    this.bids = new Map(msg.bids);
    this.asks = new Map(msg.asks);
  }
  apply(msg) {
    for (const [side, levels] of [[this.bids, msg.bids], [this.asks, msg.asks]]) {
      for (const [p, q] of levels) {
        if (/^0*\.?0*$/.test(q)) side.delete(p); else side.set(p, q);
      }
    }
    this.seq = msg.seq;
  }
}

export class Feed extends EventTarget {
  constructor(url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`) {
    super();
    this.url = url;
    this.ws = null;
    this.handlers = new Map(); // channel -> Set of handlers
    this.books = new Map(); // depth channel -> Book
    this.authed = false;
    this.retry = 0;
    this.state = "connecting";
    this.resyncs = 0;
    this.nextId = 1;
    this.connect();
    window.addEventListener("dpg:session", () => this.reconnect());
    setInterval(() => this.send({ op: "ping" }), 20_000);
  }

  connect() {
    const ws = (this.ws = new WebSocket(this.url));
    this.authed = false;
    for (const b of this.books.values()) b.seq = null;
    this.update();
    ws.onopen = () => {
      this.retry = 0;
      const s = session.current();
      if (s) this.send({ op: "auth", token: s.token, id: "auth" });
      const pub = [...this.handlers.keys()].filter((c) => !PRIVATE.has(c));
      if (pub.length) this.send({ op: "subscribe", channels: pub });
      this.update();
    };
    ws.onmessage = (ev) => this.receive(JSON.parse(ev.data));
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.authed = false;
      for (const b of this.books.values()) b.seq = null;
      this.update();
      const wait = Math.min(5000, 250 * 2 ** this.retry++);
      setTimeout(() => { if (!this.ws) this.connect(); }, wait);
    };
  }

  /** Close and open again (a new session, or a test of the resync). */
  reconnect() {
    const ws = this.ws;
    this.ws = null;
    if (ws) { ws.onclose = null; ws.close(); }
    this.connect();
  }

  send(msg) {
    if (this.ws?.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify({ id: this.nextId++, ...msg }));
      return true;
    }
    return false;
  }

  /** Call `handler(message)` for each message of `channel`; returns the unsubscribe function. */
  subscribe(channel, handler) {
    let set = this.handlers.get(channel);
    if (!set) {
      set = new Set();
      this.handlers.set(channel, set);
      if (channel.startsWith("depth:")) this.books.set(channel, new Book(channel));
      if (!PRIVATE.has(channel) || this.authed) this.send({ op: "subscribe", channels: [channel] });
    }
    set.add(handler);
    this.update();
    return () => {
      set.delete(handler);
      if (set.size) return;
      this.handlers.delete(channel);
      this.books.delete(channel);
      this.send({ op: "unsubscribe", channels: [channel] });
      this.update();
    };
  }

  book(channel) {
    return this.books.get(channel);
  }

  receive(msg) {
    if (msg.op === "auth") {
      if (msg.error) return session.clear();
      this.authed = true;
      const priv = [...this.handlers.keys()].filter((c) => PRIVATE.has(c));
      if (priv.length) this.send({ op: "subscribe", channels: priv });
      this.update();
      return;
    }
    const ch = msg.channel;
    if (!ch) return;
    const book = this.books.get(ch);
    if (book) {
      if (msg.type === "snapshot") book.reset(msg);
      else if (book.seq === null) return; // before its snapshot: the snapshot will include it
      else if (msg.prev_seq !== book.seq) return this.resync(book);
      else book.apply(msg);
      this.update();
    }
    for (const f of this.handlers.get(ch) || []) f(msg, book);
  }

  /** A gap in a book's updates: drop it and ask for a new snapshot. */
  resync(book) {
    book.seq = null;
    this.send({ op: "unsubscribe", channels: [book.channel] });
    this.send({ op: "subscribe", channels: [book.channel] });
    this.update();
    for (const f of this.handlers.get(book.channel) || []) f({ channel: book.channel, type: "gap" }, book);
  }

  update() {
    const open = this.ws?.readyState === WebSocket.OPEN;
    const synced = [...this.books.values()].every((b) => b.seq !== null);
    const authOk = !session.current() || this.authed;
    const state = !this.ws ? "stale" : !open ? (this.state === "connecting" ? "connecting" : "stale")
      : synced && authOk ? "live" : "stale";
    if (state === this.state) return;
    const was = this.state;
    this.state = state;
    if (state === "live" && was !== "connecting") this.resyncs++;
    this.dispatchEvent(new CustomEvent("state", { detail: { state, was } }));
  }
}

const PRIVATE = new Set(["orders", "fills", "balances", "positions"]);

export const feed = new Feed();
