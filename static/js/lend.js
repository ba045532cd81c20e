// Rate curves: lending.rates.borrow_rate and lend_rate over utilization (computed by the
// server on a grid), drawn as SVG with today's point.
const W = 320, H = 170, L = 36, B = 22, T = 8, R = 8;
for (const svg of document.querySelectorAll("svg.rate-curve")) {
  // The server sends exact decimal strings; numbers are only for drawing.
  const num = (v) => (Array.isArray(v) ? v.map(num) : Number(v));
  const raw = JSON.parse(document.getElementById(svg.dataset.symbol).textContent);
  const data = { borrow: num(raw.borrow), lend: num(raw.lend), now: num(raw.now), optimal: Number(raw.optimal) };
  const maxY = Math.max(...data.borrow.map((p) => p[1]), 0.01) * 1.05;
  const x = (u) => L + u * (W - L - R);
  const y = (r) => H - B - (r / maxY) * (H - B - T);
  const path = (pts) => pts.map(([u, r], i) => `${i ? "L" : "M"}${x(u).toFixed(1)},${y(r).toFixed(1)}`).join("");
  const ticks = [0, 0.25, 0.5, 0.75, 1];
  const yt = [0, maxY / 2, maxY];
  const [u, br, lr] = data.now;
  svg.innerHTML = `
    ${ticks.map((t) => `<line x1="${x(t)}" x2="${x(t)}" y1="${T}" y2="${H - B}" stroke="#262935"/><text x="${x(t)}" y="${H - 6}" fill="#8b8fa3" font-size="10" text-anchor="middle">${t * 100}%</text>`).join("")}
    ${yt.map((t) => `<line x1="${L}" x2="${W - R}" y1="${y(t)}" y2="${y(t)}" stroke="#262935"/><text x="${L - 4}" y="${y(t) + 3}" fill="#8b8fa3" font-size="10" text-anchor="end">${(t * 100).toFixed(0)}%</text>`).join("")}
    <line x1="${x(data.optimal)}" x2="${x(data.optimal)}" y1="${T}" y2="${H - B}" stroke="#555a70" stroke-dasharray="3 3"/>
    <path d="${path(data.borrow)}" fill="none" stroke="#e33e3f" stroke-width="2"/>
    <path d="${path(data.lend)}" fill="none" stroke="#2ecc71" stroke-width="2"/>
    <circle cx="${x(u)}" cy="${y(br)}" r="4" fill="#fff" class="now"><title>now: U ${(u * 100).toFixed(2)}%, borrow ${(br * 100).toFixed(2)}%</title></circle>
    <circle cx="${x(u)}" cy="${y(lr)}" r="3" fill="#2ecc71"><title>lend ${(lr * 100).toFixed(2)}%</title></circle>`;
}
