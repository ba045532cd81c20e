// The exchange's WebSocket (Backpack's protocol) with automatic reconnection: every
// subscription is sent again after a reconnect, and `onOpen` handlers run so that pages
// can resynchronise their state (order book snapshots) from REST.
//
// Private streams (`account.*`, subscribePrivate) need no signature from a page of this
// site: the socket's logged-in session names the account. They are requested apart from
// the public ones (a refusal, e.g. after a log-out, costs no public stream), with an id
// whose answer runs the hooks: onSubscribed after every (re)subscription, onRefused with
// the error, onLost when the socket closes. Their numbers (positionUpdate's are JSON
// numbers) reach the handlers as their exact decimal text, never as floats.

export class Stream {
  constructor(url) {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    this.url = url || `${proto}//${location.host}/ws`;
    this.handlers = new Map(); // stream name -> [callback]
    this.openHandlers = [];
    this.privateHandlers = new Map(); // private stream name -> [callback]
    this.privateHooks = [];
    this.pending = new Map(); // request id -> hooks to run on its answer
    this.nextId = 1;
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
      this.sendPrivate([...this.privateHandlers.keys()], this.privateHooks);
      this.openHandlers.forEach((fn) => fn());
    };
    this.ws.onmessage = (event) => {
      let msg;
      try { msg = JSON.parse(event.data); } catch { return; }
      if (msg.id != null && this.pending.has(msg.id)) {
        const hooks = this.pending.get(msg.id);
        this.pending.delete(msg.id);
        hooks.forEach((h) => (msg.error ? h.onRefused?.(msg.error) : h.onSubscribed?.()));
        return;
      }
      if (!msg.stream) return;
      const priv = this.privateHandlers.get(msg.stream);
      if (priv) {
        msg = JSON.parse(event.data, exactNumbers);
        priv.forEach((fn) => fn(msg));
        return;
      }
      (this.handlers.get(msg.stream) || []).forEach((fn) => fn(msg));
    };
    this.ws.onclose = () => {
      this.setStatus("reconnecting");
      this.pending.clear();
      this.privateHooks.forEach((h) => h.onLost?.());
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

  subscribePrivate(names, fn, hooks = {}) {
    for (const name of names) {
      if (!this.privateHandlers.has(name)) this.privateHandlers.set(name, []);
      this.privateHandlers.get(name).push(fn);
    }
    this.privateHooks.push(hooks);
    this.sendPrivate(names, [hooks]);
  }

  sendPrivate(names, hooks) {
    if (!names.length || !this.ws || this.ws.readyState !== WebSocket.OPEN) return;
    const id = this.nextId++;
    this.pending.set(id, hooks);
    this.send({ method: "SUBSCRIBE", params: names, id });
  }

  unsubscribe(names) {
    for (const name of names) this.handlers.delete(name);
    this.send({ method: "UNSUBSCRIBE", params: names });
  }

  onOpen(fn) { this.openHandlers.push(fn); }
}

// JSON.parse reviver: a number as the text it was written with (Chromium 114+, Firefox
// 135+; older browsers fall back to the number's shortest text).
function exactNumbers(key, value, context) {
  return typeof value === "number" ? (context?.source ?? String(value)) : value;
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
