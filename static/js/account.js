// Account page: margin gauges and lent/borrowed amounts from /ui/api/state, read again
// when the account's private streams tell of an order or position change, and every 30 s.
import { Stream } from "./stream.js";
import { AccountFeed } from "./account_feed.js";

const $ = (id) => document.getElementById(id);
// Display only: cut a decimal string to `d` places (no float arithmetic on amounts).
const cut = (s, d = 2) => { const [i, f = ""] = String(s).split("."); return f && d ? `${i}.${f.slice(0, d)}` : i; };
const pct = (v) => (v == null ? "–" : `${(Number(v) * 100).toFixed(2)}%`);
function bar(id, value, scale, cls = "") {
  const el = $(id);
  el.className = `bar ${cls}`;
  el.firstElementChild.style.width = `${Math.max(0, Math.min(100, (Number(value) / scale) * 100))}%`;
}
let s = null;
function render() {
  if (!s) return;
  const k = s.risk;
  $("g-equity").textContent = cut(k.netEquity);
  $("g-equity").title = k.netEquity;
  $("g-available").textContent = cut(k.netEquityAvailable);
  $("g-mf").textContent = k.marginFraction == null ? "no exposure" : pct(k.marginFraction);
  $("g-imf").textContent = pct(k.imf);
  $("g-mmf").textContent = pct(k.mmf);
  const mf = k.marginFraction == null ? 1 : Number(k.marginFraction);
  bar("g-mf-bar", Math.min(mf, 1), 1, mf < Number(k.mmf) ? "bad" : mf < Number(k.imf) ? "warn" : "");
  bar("g-imf-bar", k.imf, 1, "warn");
  bar("g-mmf-bar", k.mmf, 1, "bad");
  for (const b of s.balances) {
    let tr = document.querySelector(`#balances tr[data-asset="${b.symbol}"]`);
    if (!tr) { // an asset wholly lent: no wallet balance row on the server-rendered page
      tr = document.createElement("tr");
      tr.dataset.asset = b.symbol;
      tr.innerHTML = `<td></td><td class="num"></td><td class="num"></td><td class="num"></td><td class="num lent"></td><td class="num borrowed"></td>`;
      tr.cells[0].textContent = b.symbol;
      [b.total, b.locked, b.available].forEach((v, i) => { tr.cells[i + 1].textContent = v; });
      document.querySelector("#balances tbody").append(tr);
      [...document.querySelectorAll("#balances td[colspan]")].forEach((td) => td.parentElement.remove());
    }
    tr.querySelector(".lent").textContent = b.lent;
    tr.querySelector(".borrowed").textContent = b.borrowed;
  }
}
window.accountFeed = new AccountFeed(new Stream(), {
  reset: (state) => { if (state.balances) s = state; },
  apply: () => {}, // the figures come with the snapshot each update asks for
  render,
});
