// Account page: margin gauges and lent/borrowed amounts, refreshed from /ui/api/state.
const $ = (id) => document.getElementById(id);
const pct = (v) => (v == null ? "–" : `${(Number(v) * 100).toFixed(2)}%`);
function bar(id, value, scale, cls = "") {
  const el = $(id);
  el.className = `bar ${cls}`;
  el.firstElementChild.style.width = `${Math.max(0, Math.min(100, (Number(value) / scale) * 100))}%`;
}
async function refresh() {
  const r = await fetch("/ui/api/state", { credentials: "same-origin" }).catch(() => null);
  if (!r || !r.ok) return;
  const s = await r.json();
  const k = s.risk;
  $("g-equity").textContent = k.netEquity;
  $("g-available").textContent = k.netEquityAvailable;
  $("g-mf").textContent = k.marginFraction == null ? "no exposure" : pct(k.marginFraction);
  $("g-imf").textContent = pct(k.imf);
  $("g-mmf").textContent = pct(k.mmf);
  const mf = k.marginFraction == null ? 1 : Number(k.marginFraction);
  bar("g-mf-bar", Math.min(mf, 1), 1, mf < Number(k.mmf) ? "bad" : mf < Number(k.imf) ? "warn" : "");
  bar("g-imf-bar", k.imf, 1, "warn");
  bar("g-mmf-bar", k.mmf, 1, "bad");
  for (const b of s.balances) {
    const tr = document.querySelector(`#balances tr[data-asset="${b.symbol}"]`);
    if (!tr) continue;
    tr.querySelector(".lent").textContent = b.lent;
    tr.querySelector(".borrowed").textContent = b.borrowed;
  }
}
refresh();
setInterval(refresh, 3000);
