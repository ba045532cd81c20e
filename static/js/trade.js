// Trade page: chart, live book and trades, order form, and the account's orders, fills
// and positions (live from the account's private streams). Amounts are shown as the server's decimal strings; the estimates (cost,
// fee, margin) are JS-number approximations and say so (≈).
import { createChart, CandlestickSeries, LineSeries } from "../vendor/lightweight-charts.mjs";
import { Stream, DepthBook } from "./stream.js";
import { AccountFeed } from "./account_feed.js";

const cfg = JSON.parse(document.getElementById("market-config").textContent);
const $ = (id) => document.getElementById(id);
const csrf = document.querySelector('meta[name="csrf-token"]').content;
const stream = new Stream();
window.pageStream = stream;

document.getElementById("market-select").addEventListener("change", (e) => {
  location.href = `/trade/${e.target.value}/`;
});

function seg(id, fn) {
  const box = $(id);
  if (!box) return;
  box.addEventListener("click", (e) => {
    const b = e.target.closest("button");
    if (!b) return;
    box.querySelectorAll("button").forEach((x) => x.classList.toggle("on", x === b));
    fn(b.dataset.value ?? b.dataset.tab, b);
  });
}
const esc = (s) => String(s ?? "–").replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
const toSec = (s) => Math.floor(Date.parse(/Z|[+-]\d\d:?\d\d$/.test(s) ? s.replace(" ", "T") : `${s.replace(" ", "T")}Z`) / 1000);
// Display only: a decimal string cut to `d` places (the full string in the title).
const cut = (v, d) => { if (v == null) return "–"; const [i, f = ""] = String(v).split("."); return f.length > d ? `<span title="${esc(v)}">${i}.${f.slice(0, d)}</span>` : esc(v); };
const fmtNum = (n, d = 2) => (Number.isFinite(n) ? n.toLocaleString("en-US", { maximumFractionDigits: d }) : "–");

// ------------------------------------------------------------------ ticker
function showTicker(t) {
  $("t-last").textContent = t.c;
  const open = Number(t.o), pct = open ? ((Number(t.c) - open) / open) * 100 : 0;
  $("t-change").textContent = `${pct.toFixed(2)}%`;
  $("t-change").className = pct < 0 ? "down" : "up";
  $("t-high").textContent = t.h; $("t-low").textContent = t.l; $("t-vol").textContent = t.V;
}
fetch(`/api/v1/ticker?symbol=${cfg.symbol}`).then((r) => r.json()).then((t) =>
  showTicker({ c: t.lastPrice, o: t.firstPrice, h: t.high, l: t.low, V: t.quoteVolume })).catch(() => {});
stream.subscribe([`ticker.${cfg.symbol}`], (m) => showTicker(m.data));

// ------------------------------------------------------------------ chart
const chartEl = $("chart");
const chart = createChart(chartEl, {
  autoSize: true,
  layout: { background: { color: "#14151b" }, textColor: "#a7abbd" },
  grid: { vertLines: { color: "#1f2230" }, horzLines: { color: "#1f2230" } },
  timeScale: { timeVisible: true, secondsVisible: false },
  rightPriceScale: { borderColor: "#262935" },
});
const candles = chart.addSeries(CandlestickSeries, {
  upColor: "#2ecc71", downColor: "#e33e3f", borderVisible: false, wickUpColor: "#2ecc71", wickDownColor: "#e33e3f",
});
const line = chart.addSeries(LineSeries, { color: "#f5a623", lineWidth: 2, visible: false });
let interval = "1m", priceType = "Last", klineStream = null, pollTimer = null;
const SECONDS = { "1m": 60, "5m": 300, "15m": 900, "1h": 3600, "1d": 86400 };
const SPAN = { "1m": 6 * 3600, "5m": 24 * 3600, "15m": 3 * 86400, "1h": 14 * 86400, "1d": 365 * 86400 };

async function loadKlines() {
  const start = Math.floor(Date.now() / 1000) - SPAN[interval];
  const url = `/api/v1/klines?symbol=${cfg.symbol}&interval=${interval}&startTime=${start}&priceType=${priceType}`;
  const rows = await fetch(url).then((r) => r.json()).catch(() => []);
  if (!Array.isArray(rows)) return;
  const bars = rows.map((k) => ({ time: toSec(k.start), open: +k.open, high: +k.high, low: +k.low, close: +k.close }));
  if (priceType === "Last") {
    candles.applyOptions({ visible: true }); line.applyOptions({ visible: false });
    candles.setData(bars);
  } else {
    candles.applyOptions({ visible: false }); line.applyOptions({ visible: true });
    line.setData(bars.map((b) => ({ time: b.time, value: b.close })));
  }
  chartEl.dataset.bars = String(bars.length);
}
function watchKlines() {
  if (klineStream) stream.unsubscribe([klineStream]);
  clearInterval(pollTimer);
  klineStream = null;
  if (priceType === "Last") {
    klineStream = `kline.${interval}.${cfg.symbol}`;
    stream.subscribe([klineStream], (m) => {
      const k = m.data;
      if (priceType !== "Last") return;
      try { candles.update({ time: toSec(k.t), open: +k.o, high: +k.h, low: +k.l, close: +k.c }); } catch { loadKlines(); }
    });
  } else if (cfg.perp) {
    // A perp's mark and index each second on markPrice.<symbol>: the line's last point.
    klineStream = `markPrice.${cfg.symbol}`;
    stream.subscribe([klineStream], (m) => {
      const value = priceType === "Mark" ? m.data.p : m.data.i;
      if (priceType === "Last" || value == null) return;
      const sec = Math.floor(Number(m.data.T) / 1e6);
      try {
        line.update({ time: sec - (sec % SECONDS[interval]), value: +value });
        chartEl.dataset.last = value;
      } catch { loadKlines(); }
    });
  } else {
    pollTimer = setInterval(loadKlines, 5000); // a spot market's mark and index: from REST
  }
  loadKlines();
}
seg("intervals", (v) => { interval = v; watchKlines(); });
seg("price-type", (v) => { priceType = v; watchKlines(); });
watchKlines();

// ------------------------------------------------------------------ order book and trades
const ROWS = 12;
function renderBook(book) {
  const asks = book.levels("asks", ROWS), bids = book.levels("bids", ROWS);
  const cum = (rows) => { let t = 0; return rows.map(([p, q]) => { t += Number(q); return [p, q, t]; }); };
  const a = cum(asks), b = cum(bids);
  const max = Math.max(a.length ? a[a.length - 1][2] : 0, b.length ? b[b.length - 1][2] : 0) || 1;
  const row = (side) => ([p, q, t]) =>
    `<tr data-price="${esc(p)}" style="--depth:${((t / max) * 100).toFixed(1)}%" class="${side}"><td>${esc(p)}</td><td class="num">${esc(q)}</td><td class="num">${fmtNum(t, 4)}</td></tr>`;
  $("asks").innerHTML = a.reverse().map(row("ask")).join("");
  $("bids").innerHTML = b.map(row("bid")).join("");
  const bestAsk = asks[0]?.[0], bestBid = bids[0]?.[0];
  $("spread").textContent = bestAsk && bestBid ? `spread ≈ ${fmtNum(Number(bestAsk) - Number(bestBid), 8)}` : "–";
  window.bestAsk = bestAsk; window.bestBid = bestBid;
  updateEstimate();
}
const book = new DepthBook(cfg.symbol, stream, renderBook);
window.depthBook = book;
document.querySelector(".book-card").addEventListener("click", (e) => {
  const tr = e.target.closest("tr[data-price]");
  if (tr && $("price")) { $("price").value = tr.dataset.price; updateEstimate(); }
});

const tradesBody = $("trades");
function addTrade(t, prepend = true) {
  const tr = document.createElement("tr");
  tr.className = t.buyerMaker ? "down" : "up";
  tr.innerHTML = `<td>${esc(t.price)}</td><td class="num">${esc(t.qty)}</td><td class="num">${new Date(t.ms).toLocaleTimeString()}</td>`;
  if (prepend) tradesBody.prepend(tr); else tradesBody.append(tr);
  while (tradesBody.children.length > 30) tradesBody.lastChild.remove();
}
fetch(`/api/v1/trades?symbol=${cfg.symbol}&limit=30`).then((r) => r.json()).then((rows) => {
  rows.forEach((t) => addTrade({ price: t.price, qty: t.quantity, ms: t.timestamp, buyerMaker: t.isBuyerMaker }, false));
}).catch(() => {});
stream.subscribe([`trade.${cfg.symbol}`], (m) => {
  const t = m.data;
  addTrade({ price: t.p, qty: t.q, ms: Math.floor(Number(t.T) / 1000), buyerMaker: t.m });
});

// ------------------------------------------------------------------ order form
let side = "Bid", state = null;
const form = $("order-form");
function updateEstimate() {
  if (!form) return;
  const type = $("order-type").value;
  const qty = Number($("quantity").value);
  const ref = type === "Market" ? Number(side === "Bid" ? window.bestAsk : window.bestBid) : Number($("price").value || $("trigger-price").value);
  const cost = qty * ref;
  const taker = type !== "Limit" || !$("post-only").checked;
  const fee = (cost * Number(taker ? cfg.takerFeeBps : cfg.makerFeeBps)) / 10000;
  $("est-cost").textContent = Number.isFinite(cost) && cost ? `≈ ${fmtNum(cost, 4)} ${cfg.quote}` : "–";
  $("est-fee").textContent = Number.isFinite(fee) && cost ? `≈ ${fmtNum(fee, 6)} ${cfg.quote}` : "–";
  let margin = "–";
  const bal = (s) => state?.balances?.find((b) => b.symbol === s);
  if (cost) {
    if (cfg.perp) {
      const imf = Math.max(Number(cfg.imfBase), 1 / Number(state?.leverage || 10) || 0);
      margin = `≈ ${fmtNum(cost * imf, 4)} ${cfg.quote}`;
    } else if ($("auto-borrow")?.checked) {
      const need = side === "Bid" ? cost : qty;
      const have = Number(bal(side === "Bid" ? cfg.quote : cfg.base)?.available || 0);
      const borrow = Math.max(0, need - have);
      margin = borrow ? `≈ borrows ${fmtNum(borrow, 6)} ${side === "Bid" ? cfg.quote : cfg.base}` : "none (covered by balance)";
    } else {
      margin = "none (spot, fully funded)";
    }
  }
  $("est-margin").textContent = margin;
  const availSym = cfg.perp || side === "Bid" ? cfg.quote : cfg.base;
  if (cfg.perp) { // perps (and auto-lent balances) trade on net equity
    const eq = state?.risk?.netEquityAvailable;
    $("est-available").textContent = eq ? `≈ ${fmtNum(Number(eq), 2)} ${cfg.quote} equity` : "–";
  } else {
    $("est-available").textContent = state ? `${bal(availSym)?.available ?? "0"} ${availSym}` : "–";
  }
}
if (form) {
  seg("side", (v) => {
    side = v;
    const btn = $("submit-order");
    btn.textContent = `${v === "Bid" ? "Buy" : "Sell"} ${cfg.base}`;
    btn.className = `${v === "Bid" ? "buy" : "sell"} wide-btn`;
    updateEstimate();
  });
  $("order-type").addEventListener("change", () => {
    const t = $("order-type").value;
    $("price-row").hidden = t === "Market";
    $("trigger-row").hidden = t !== "Trigger";
    $("post-only").disabled = t === "Market";
    updateEstimate();
  });
  form.addEventListener("input", updateEstimate);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const type = $("order-type").value;
    const body = { symbol: cfg.symbol, side, orderType: type === "Market" ? "Market" : "Limit", quantity: $("quantity").value.trim() };
    if (type !== "Market") body.price = $("price").value.trim();
    if (type === "Trigger") body.triggerPrice = $("trigger-price").value.trim();
    if (type === "Trigger" && !body.price) { body.orderType = "Market"; delete body.price; }
    if ($("post-only").checked && body.orderType === "Limit") body.postOnly = true;
    if ($("ioc").checked) body.timeInForce = "IOC";
    if ($("reduce-only")?.checked) body.reduceOnly = true;
    if ($("auto-borrow")?.checked) { body.autoBorrow = true; body.autoLendRedeem = true; }
    // Take profit / stop loss (perps): reduce-only trigger orders created as this one fills.
    const tp = $("take-profit")?.value.trim(), sl = $("stop-loss")?.value.trim();
    if (tp) body.takeProfitTriggerPrice = tp;
    if (sl) body.stopLossTriggerPrice = sl;
    $("order-error").hidden = true; $("order-result").hidden = true;
    const btn = $("submit-order");
    btn.disabled = true;
    try {
      const res = await post("/ui/api/order", body);
      if (!res.ok) throw res.body;
      const o = res.body;
      $("order-result").textContent = `Order ${o.id}: ${o.status}${Number(o.executedQuantity) ? `, filled ${o.executedQuantity}` : ""}`;
      $("order-result").hidden = false;
    } catch (err) {
      $("order-error").textContent = `${err.code || "ERROR"}: ${err.message || "the order was refused"}`;
      $("order-error").hidden = false;
    } finally {
      btn.disabled = false;
      if (feed && !feed.live) feed.load(); // live: the order's updates tell the tables
    }
  });
}

async function post(url, body) {
  const r = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json", "X-CSRFToken": csrf }, body: JSON.stringify(body), credentials: "same-origin" });
  let data = {};
  try { data = await r.json(); } catch { data = { code: `HTTP_${r.status}`, message: r.statusText }; }
  return { ok: r.ok, body: data };
}

// ------------------------------------------------------------------ account tables
// Live from the private streams (account_feed.js): open orders, order history and fills
// from account.orderUpdate, positions from account.positionUpdate; balances and the
// account figures from /ui/api/state snapshots the feed reads when an update arrives.
seg("tabs", (id) => document.querySelectorAll(".tab").forEach((t) => { t.hidden = t.id !== id; }));
const time = (s) => (s ? String(s).replace("T", " ").slice(5, 19) : "–");
const isoOf = (us) => new Date(Math.floor(Number(us) / 1000)).toISOString();
const OPEN = new Set(["New", "PartiallyFilled", "TriggerPending"]);
const DONE = new Set(["Filled", "Cancelled", "Expired", "TriggerFailed"]);
const byIdDesc = (a, b) => (BigInt(b.id) > BigInt(a.id) ? 1 : BigInt(b.id) < BigInt(a.id) ? -1 : 0);
const HISTORY = 30;
const acct = { orders: new Map(), fills: new Map(), positions: new Map() };

// Rows and cells that did not change stay as they are (a position's row is patched each
// time its mark moves: what the user points at or clicks is not replaced under them).
const rowKey = (tr) => tr.dataset.orderId ?? tr.dataset.symbol ?? tr.dataset.asset ?? tr.className;
function fill(id, rows, render, empty) {
  const body = document.querySelector(`#${id} tbody`);
  const next = document.createElement("tbody");
  next.innerHTML = rows.length ? rows.map(render).join("") : `<tr class="empty"><td colspan="9">${empty}</td></tr>`;
  const old = [...body.children], fresh = [...next.children];
  fresh.forEach((tr, i) => {
    const was = old[i];
    if (!was) { body.append(tr); return; }
    if (was.outerHTML === tr.outerHTML) return;
    if (rowKey(was) !== rowKey(tr) || was.cells.length !== tr.cells.length) { was.replaceWith(tr); return; }
    [...tr.cells].forEach((td, j) => {
      const cell = was.cells[j];
      if (cell.outerHTML === td.outerHTML) return;
      cell.className = td.className;
      cell.innerHTML = td.innerHTML;
    });
  });
  old.slice(fresh.length).forEach((tr) => tr.remove());
}
function renderAccount() {
  const orders = [...acct.orders.values()].sort(byIdDesc);
  const open = orders.filter((o) => OPEN.has(o.status)).reverse();
  fill("open-orders", open, (o) => `<tr data-order-id="${esc(o.id)}"><td class="${o.side === "Bid" ? "up" : "down"}">${o.side === "Bid" ? "Buy" : "Sell"}</td><td>${esc(o.orderType)}${o.triggerPrice ? ` @${esc(o.triggerPrice)}` : ""}</td><td class="num">${esc(o.price)}</td><td class="num">${esc(o.quantity)}</td><td class="num">${esc(o.executedQuantity)}</td><td>${esc(o.status)}</td><td><button class="ghost cancel" data-id="${esc(o.id)}">Cancel</button></td></tr>`, "No open orders.");
  fill("order-history", orders.slice(0, HISTORY), (o) => `<tr data-order-id="${esc(o.id)}"><td>${time(o.createdAt)}</td><td>${o.side === "Bid" ? "Buy" : "Sell"}</td><td>${esc(o.orderType)}</td><td class="num">${esc(o.price)}</td><td class="num">${esc(o.quantity)}</td><td class="num">${esc(o.executedQuantity)}</td><td>${esc(o.status)}</td></tr>`, "No orders yet.");
  const fills = [...acct.fills.values()].sort((a, b) => Number(b.tradeId) - Number(a.tradeId)).slice(0, HISTORY);
  fill("fills", fills, (f) => `<tr><td>${time(f.timestamp)}</td><td class="${f.side === "Bid" ? "up" : "down"}">${f.side === "Bid" ? "Buy" : "Sell"}</td><td class="num">${esc(f.price)}</td><td class="num">${esc(f.quantity)}</td><td class="num">${esc(f.fee)} ${esc(f.feeSymbol)}</td><td>${f.isMaker ? "maker" : "taker"}</td></tr>`, "No fills yet.");
  fill("positions", [...acct.positions.values()], (p) => `<tr data-symbol="${esc(p.symbol)}"><td>${esc(p.symbol)}</td><td class="num ${Number(p.netQuantity) < 0 ? "down" : "up"}">${esc(p.netQuantity)}</td><td class="num">${cut(p.entryPrice, 4)}</td><td class="num mark">${cut(p.markPrice, 4)}</td><td class="num pnl ${Number(p.pnlUnrealized) < 0 ? "down" : "up"}">${cut(p.pnlUnrealized, 6)}</td><td class="num">${cut(p.estLiquidationPrice, 4)}</td><td class="num">${cut(p.cumulativeFunding, 6)}</td><td class="num">${cut(p.cumulativeInterest, 6)}</td></tr>`, "No open positions.");
  if (state) {
    fill("trade-balances", state.balances, (b) => `<tr data-asset="${esc(b.symbol)}"><td>${esc(b.symbol)}</td><td class="num">${esc(b.total)}</td><td class="num">${esc(b.available)}</td><td class="num">${esc(b.lent)}</td><td class="num">${esc(b.borrowed)}</td></tr>`, "No balances: use the faucet on the Account page.");
    $("net-equity").textContent = `${state.risk.netEquity} USDC`;
    $("mf").textContent = state.risk.marginFraction ?? "–";
  }
  updateEstimate();
}

// A snapshot of /ui/api/state: the account figures, and (for this market) the orders.
function resetAccount(s) {
  if (s.balances) state = { balances: s.balances, risk: s.risk };
  if (s.positions) acct.positions = new Map(s.positions.map((p) => [p.symbol, p]));
  if (s.openOrders) {
    acct.orders = new Map(s.orderHistory.map((o) => [o.id, o]));
    // open orders' createdAt is in milliseconds, history's a date-time
    s.openOrders.forEach((o) => acct.orders.set(o.id, { ...o, createdAt: acct.orders.get(o.id)?.createdAt ?? new Date(Number(o.createdAt)).toISOString() }));
    acct.fills = new Map(s.fills.map((f) => [`${f.tradeId}:${f.orderId}`, f]));
  }
}

// One update of account.orderUpdate / account.positionUpdate (idempotent).
function applyUpdate(msg) {
  const d = msg.data;
  if (msg.stream.startsWith("account.positionUpdate")) {
    if (d.e === "positionClosed" || Number(d.q) === 0) { acct.positions.delete(d.s); return; }
    const prev = acct.positions.get(d.s) || { symbol: d.s };
    acct.positions.set(d.s, { ...prev, netQuantity: d.q, entryPrice: d.B, markPrice: d.M, pnlUnrealized: d.P, realizedPnl: d.p });
    return;
  }
  if (d.s !== cfg.symbol) return; // another market's order: only the figures move
  const prev = acct.orders.get(d.i);
  if (prev && DONE.has(prev.status) && !DONE.has(d.X)) return; // replayed: already done
  const executed = prev && Number(prev.executedQuantity) > Number(d.z) ? prev.executedQuantity : d.z;
  acct.orders.set(d.i, {
    id: d.i, side: d.S, orderType: d.o[0] + d.o.slice(1).toLowerCase(), price: d.p ?? null,
    quantity: d.q ?? prev?.quantity ?? null, executedQuantity: executed, status: d.X,
    triggerPrice: d.P ?? null, createdAt: prev?.createdAt ?? isoOf(d.T),
  });
  if (d.e === "orderFill") {
    acct.fills.set(`${d.t}:${d.i}`, { tradeId: d.t, orderId: d.i, side: d.S, price: d.L, quantity: d.l, fee: d.n, feeSymbol: d.N, isMaker: d.m, timestamp: isoOf(d.T) });
  }
}

let feed = null;
if (cfg.loggedIn) {
  feed = new AccountFeed(stream, { symbol: cfg.symbol, reset: resetAccount, apply: applyUpdate, render: renderAccount });
  window.accountFeed = feed;
  document.querySelector(".tabs-card").addEventListener("click", async (e) => {
    const b = e.target.closest("button.cancel, #cancel-all");
    if (!b) return;
    b.disabled = true;
    const res = await post("/ui/api/cancel", b.id === "cancel-all" ? { symbol: cfg.symbol, all: true } : { symbol: cfg.symbol, orderId: b.dataset.id });
    if (!res.ok) { $("order-error").textContent = `${res.body.code}: ${res.body.message}`; $("order-error").hidden = false; b.disabled = false; }
    if (!feed.live) feed.load();
  });
  if (cfg.perp) document.querySelector('button[data-tab="tab-positions"]').click();
}
