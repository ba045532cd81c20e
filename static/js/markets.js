// Markets overview: last price and 24h change live from the ticker streams.
import { Stream } from "./stream.js";

const rows = new Map([...document.querySelectorAll("#markets-table tbody tr")].map((tr) => [tr.dataset.symbol, tr]));
const stream = new Stream();
stream.subscribe([...rows.keys()].map((s) => `ticker.${s}`), (msg) => {
  const d = msg.data;
  const tr = rows.get(d.s);
  if (!tr) return;
  tr.querySelector(".last").textContent = d.c;
  const open = Number(d.o);
  const pct = open ? ((Number(d.c) - open) / open) * 100 : 0;
  const cell = tr.querySelector(".change");
  cell.textContent = `${pct.toFixed(2)}%`;
  cell.className = `num change ${pct < 0 ? "down" : "up"}`;
  tr.querySelector(".volume").textContent = d.V;
});
