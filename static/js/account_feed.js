// The signed-in account's data on a page, live: the private streams account.orderUpdate
// and account.positionUpdate on the page's socket (its session names the account), plus
// snapshots of /ui/api/state. A snapshot is read
//   - after every (re)subscription: updates may have been missed while disconnected;
//   - shortly after an update that moves balances (an order's, a position opened or
//     closed), debounced: balances, net equity, margin fraction, lent and borrowed are
//     not on the streams;
//   - every 30 s, for what moves without an update (interest, funding, auto lend).
// A snapshot may be older than updates that arrived while it was read: those are applied
// again on top of it, so the page's `apply` must be idempotent.
//
// The page gives: reset(state) (take a snapshot; a part may be missing when a newer
// snapshot already gave it), apply(msg) (one stream frame), render().

export const PRIVATE_STREAMS = ["account.orderUpdate", "account.positionUpdate"];
export const FALLBACK_MS = 30000;
const DEBOUNCE_MS = 300;
const MIN_GAP_MS = 1000;
const FIGURES = ["balances", "risk", "positions"];

export class AccountFeed {
  constructor(stream, { symbol = null, reset, apply, render }) {
    Object.assign(this, { symbol, reset, apply, render });
    this.logs = new Set(); // per snapshot in flight: the updates received meanwhile
    this.seq = 0;
    this.applied = 0; // the newest snapshot whose account figures are shown
    this.timer = null;
    this.last = 0;
    this.subscriptions = 0; // acknowledged (re)subscriptions
    this.setStatus("subscribing");
    stream.subscribePrivate(PRIVATE_STREAMS, (msg) => this.update(msg), {
      onSubscribed: () => { this.subscriptions += 1; this.setStatus("live"); this.load(); },
      onRefused: (err) => this.setStatus("refused", err.message),
      onLost: () => this.setStatus("reconnecting"),
    });
    this.load();
    setInterval(() => this.load(), FALLBACK_MS);
  }

  get live() { return this.status === "live"; }

  setStatus(status, title = "") {
    this.status = status;
    document.querySelectorAll("[data-private-status]").forEach((el) => {
      el.dataset.privateStatus = status;
      el.textContent = `account ${status}`;
      el.title = title;
    });
  }

  update(msg) {
    this.logs.forEach((log) => log.push(msg));
    this.apply(msg);
    this.render();
    const e = msg.data.e;
    if (msg.stream.startsWith("account.orderUpdate") || e === "positionOpened" || e === "positionClosed") {
      this.soon();
    }
  }

  // A snapshot soon: DEBOUNCE_MS after the first update of a burst, at most one per MIN_GAP_MS.
  soon() {
    if (this.timer) return; // one is coming: it will see this update's effects too
    const wait = Math.max(DEBOUNCE_MS, this.last + MIN_GAP_MS - Date.now());
    this.timer = setTimeout(() => this.load(), wait);
  }

  async load() {
    clearTimeout(this.timer);
    this.timer = null;
    this.last = Date.now();
    const n = ++this.seq;
    const log = [];
    this.logs.add(log);
    try {
      const url = this.symbol ? `/ui/api/state?symbol=${this.symbol}` : "/ui/api/state";
      const r = await fetch(url, { credentials: "same-origin" });
      if (!r.ok) return;
      const state = await r.json();
      if (n < this.applied) FIGURES.forEach((k) => delete state[k]); // a newer one is shown
      else this.applied = n;
      this.reset(state);
      log.forEach((msg) => this.apply(msg));
      this.render();
    } catch {
      // offline or refused: the next update or the fallback timer tries again
    } finally {
      this.logs.delete(log);
    }
  }
}
