// The exchange's WebSocket (Backpack's protocol) with automatic reconnection: every
// subscription is sent again after a reconnect, and `onOpen` handlers run so that pages
// can resynchronise their state (order book snapshots) from REST.

export class Stream {
  constructor(url) {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    this.url = url || `${proto}//${location.host}/ws`;
    this.handlers = new Map(); // stream name -> [callback]
    this.openHandlers = [];
    this.delay = 500;
    this.status = "connecting";
    this.connect();
  }

  connect() {
    this.ws = new WebSocket(this.url);
    this.ws.onopen = () => {
      this.delay = 500;
      this.setStatus("live");
      const params = [...this.handlers.keys()];
      if (params.length) this.send({ method: "SUBSCRIBE", params });
      this.openHandlers.forEach((fn) => fn());
    };
    this.ws.onmessage = (event) => {
      let msg;
      try { msg = JSON.parse(event.data); } catch { return; }
      if (!msg.stream) return;
      (this.handlers.get(msg.stream) || []).forEach((fn) => fn(msg));
    };
    this.ws.onclose = () => {
      this.setStatus("reconnecting");
      setTimeout(() => this.connect(), this.delay);
      this.delay = Math.min(this.delay * 2, 10000);
    };
    this.ws.onerror = () => this.ws.close();
  }

  setStatus(status) {
    this.status = status;
    document.querySelectorAll("[data-stream-status]").forEach((el) => {
      el.textContent = status;
      el.dataset.streamStatus = status;
    });
  }

  send(obj) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(obj));
  }

  subscribe(names, fn) {
    const fresh = [];
    for (const name of names) {
      if (!this.handlers.has(name)) { this.handlers.set(name, []); fresh.push(name); }
      this.handlers.get(name).push(fn);
    }
    if (fresh.length) this.send({ method: "SUBSCRIBE", params: fresh });
  }

  unsubscribe(names) {
    for (const name of names) this.handlers.delete(name);
    this.send({ method: "UNSUBSCRIBE", params: names });
  }

  onOpen(fn) { this.openHandlers.push(fn); }
}

// A local order book kept from depth updates, resynchronised from the REST snapshot
// (/api/v1/depth's lastUpdateId) whenever a sequence gap appears (U != previous u + 1).
export class DepthBook {
  constructor(symbol, stream, onChange) {
    this.symbol = symbol;
    this.onChange = onChange;
    this.bids = new Map();
    this.asks = new Map();
    this.lastU = null; // the u of the last applied update (or the snapshot's lastUpdateId)
    this.buffer = [];
    this.syncing = false;
    this.resyncs = 0;
    stream.subscribe([`depth.${symbol}`], (msg) => this.update(msg.data));
    stream.onOpen(() => this.resync());
    this.resync();
  }

  async resync() {
    if (this.syncing) return;
    this.syncing = true;
    this.resyncs += 1;
    this.buffer = [];
    try {
      const res = await fetch(`/api/v1/depth?symbol=${this.symbol}`);
      const snap = await res.json();
      this.bids = new Map(snap.bids.map(([p, q]) => [p, q]));
      this.asks = new Map(snap.asks.map(([p, q]) => [p, q]));
      this.lastU = Number(snap.lastUpdateId);
      const pending = this.buffer;
      this.buffer = [];
      this.syncing = false;
      for (const d of pending) this.update(d);
      this.onChange(this);
    } catch (err) {
      this.syncing = false;
      setTimeout(() => this.resync(), 2000);
    }
  }

  update(d) {
    if (this.syncing) { this.buffer.push(d); return; }
    const U = Number(d.U), u = Number(d.u);
    if (u <= this.lastU) return; // already in the snapshot
    if (U > this.lastU + 1) { this.resync(); return; } // a gap: start again from a snapshot
    for (const [p, q] of d.b) { if (Number(q) === 0) this.bids.delete(p); else this.bids.set(p, q); }
    for (const [p, q] of d.a) { if (Number(q) === 0) this.asks.delete(p); else this.asks.set(p, q); }
    this.lastU = u;
    this.onChange(this);
  }

  levels(side, n) {
    const map = side === "bids" ? this.bids : this.asks;
    const rows = [...map.entries()].sort((a, b) => Number(a[0]) - Number(b[0]));
    return side === "bids" ? rows.reverse().slice(0, n) : rows.slice(0, n);
  }
}
