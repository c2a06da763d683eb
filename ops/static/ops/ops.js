// The ops page: polls the figures every second and draws plain SVG charts (no library, no build step).
"use strict";
const WINDOW = 120;            // seconds of history on the line charts
const QUANTILE_WINDOW = 10;    // seconds of orders a percentile is computed over
const RATE_WINDOW = 5;         // seconds a rate is averaged over (batches make counters move in steps)
const COLORS = ["#2f6fdf", "#e0742b", "#2a9d5b", "#b03aa8", "#c9a227", "#d64545", "#4bb3c4"];
const HOPS = JSON.parse(document.getElementById("ops-hops").textContent);
const history = [];            // figures snapshots, oldest first
const NS = "http://www.w3.org/2000/svg";

function el(name, attrs, parent) {
  const node = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

function nice(x) { return x >= 100 ? x.toFixed(0) : x >= 1 ? x.toFixed(1) : x.toFixed(3); }

// series: [{name, points: [[t, y], ...]}]
function lineChart(id, series) {
  const svg = document.getElementById(id);
  svg.replaceChildren();
  const [w, h, left, bottom] = [480, 180, 40, 18];
  const now = Date.now() / 1000;
  const max = Math.max(1e-9, ...series.flatMap(s => s.points.map(p => p[1]))) * 1.1;
  el("line", {x1: left, y1: h - bottom, x2: w, y2: h - bottom, class: "axis"}, svg);
  el("line", {x1: left, y1: 4, x2: left, y2: h - bottom, class: "axis"}, svg);
  el("text", {x: 2, y: 12}, svg).textContent = nice(max);
  el("text", {x: 2, y: h - bottom}, svg).textContent = "0";
  el("text", {x: w - 30, y: h - 4}, svg).textContent = "now";
  el("text", {x: left, y: h - 4}, svg).textContent = `-${WINDOW}s`;
  series.forEach((s, i) => {
    const pts = s.points.map(([t, y]) =>
      `${left + (w - left) * (1 - (now - t) / WINDOW)},${(h - bottom) - (h - bottom - 4) * (y / max)}`);
    el("polyline", {points: pts.join(" "), fill: "none", stroke: COLORS[i % COLORS.length], "stroke-width": 1.8}, svg);
    const last = s.points.length ? nice(s.points[s.points.length - 1][1]) : "–";
    el("text", {x: left + 6 + i * 120, y: 12, fill: COLORS[i % COLORS.length]}, svg).textContent = `${s.name}: ${last}`;
  });
}

// Rate of a counter over the last RATE_WINDOW seconds, at each snapshot (as Prometheus' rate()).
function rate(key, pick) {
  const points = [];
  let j = 0;
  for (let i = 1; i < history.length; i++) {
    const b = history[i];
    while (j < i - 1 && history[j + 1].at <= b.at - RATE_WINDOW) j++;
    const a = history[j];
    const dt = b.at - a.at;
    if (dt > 0) points.push([b.at, Math.max(0, (pick(b) - pick(a)) / dt)]);
  }
  return {name: key, points};
}

// Quantile of a histogram over the orders of the last QUANTILE_WINDOW seconds, as Prometheus'
// histogram_quantile does: linear interpolation inside the bucket that holds the rank.
function quantile(q, now, before) {
  const old = new Map((before || []).map(([le, n]) => [String(le), n]));
  const buckets = now.map(([le, n]) => [le === "+Inf" ? Infinity : le, n - (old.get(String(le)) || 0)]);
  const total = buckets.length ? buckets[buckets.length - 1][1] : 0;
  if (total <= 0) return null;
  const rank = q * total;
  let [prevLe, prevN] = [0, 0];
  for (const [le, n] of buckets) {
    if (n >= rank) return le === Infinity ? prevLe : prevLe + (le - prevLe) * ((rank - prevN) / Math.max(1e-9, n - prevN));
    [prevLe, prevN] = [le, n];
  }
  return prevLe;
}

function latencySeries() {
  const p50 = [], p99 = [];
  for (let i = 0; i < history.length; i++) {
    const now = history[i];
    const back = history.find(s => s.at >= now.at - QUANTILE_WINDOW) || history[0];
    if (back === now) continue;
    const [a, b] = [quantile(0.5, now.latency.confirmed, back.latency.confirmed),
                    quantile(0.99, now.latency.confirmed, back.latency.confirmed)];
    if (a !== null) { p50.push([now.at, a]); p99.push([now.at, b]); }
  }
  return [{name: "p50", points: p50}, {name: "p99", points: p99}];
}

function hopsChart(orders) {
  const svg = document.getElementById("hops");
  svg.replaceChildren();
  const [w, h, left, bottom] = [960, 220, 40, 14];
  const max = Math.max(1e-6, ...orders.map(o => o.total)) * 1.05;
  const bar = (w - left) / Math.max(1, orders.length);
  el("text", {x: 2, y: 12}, svg).textContent = nice(max);
  el("text", {x: 2, y: h - bottom}, svg).textContent = "0";
  orders.forEach((o, i) => {
    let y = h - bottom;
    HOPS.forEach((hop, j) => {
      const height = (h - bottom - 4) * (o.hops[hop] / max);
      y -= height;
      const rect = el("rect", {x: left + i * bar + 1, y, width: Math.max(1, bar - 2), height,
                               fill: COLORS[j % COLORS.length]}, svg);
      el("title", {}, rect).textContent = `${o.order} (${o.outcome})\n${hop}: ${(o.hops[hop] * 1000).toFixed(1)} ms`;
    });
  });
  document.getElementById("hops-legend").innerHTML = HOPS.map((hop, j) =>
    `<span><i style="background:${COLORS[j % COLORS.length]}"></i>${hop}</span>`).join("");
}

function csrfToken() { return document.querySelector("input[name=csrfmiddlewaretoken]").value; }

// id: the dead letter's public id (a UUID), put into the URL the page was given.
async function replay(id, button) {
  button.disabled = true;
  const url = window.OPS_REPLAY.replace("00000000-0000-0000-0000-000000000000", encodeURIComponent(id));
  const resp = await fetch(url, {method: "POST", headers: {"X-CSRFToken": csrfToken()}});
  const body = await resp.json();
  button.textContent = resp.ok ? "replayed" : (body.error ? body.error.message : "failed");
}

function deadLetters(rows, waiting) {
  document.getElementById("dl-count").textContent = `(${waiting} waiting)`;
  const tbody = document.querySelector("#dead-letters tbody");
  tbody.replaceChildren();
  for (const d of rows) {
    const tr = document.createElement("tr");
    if (d.replayed_at) tr.className = "replayed";
    for (const [value, cls] of [[d.id], [d.consumer], [d.subject], [d.deliveries], [d.error, "error"], [d.created_at]]) {
      const td = document.createElement("td");
      td.textContent = value;
      if (cls) td.className = cls;
      tr.appendChild(td);
    }
    const td = document.createElement("td");
    if (!d.replayed_at) {
      const button = document.createElement("button");
      button.textContent = "replay";
      button.onclick = () => replay(d.id, button);
      td.appendChild(button);
    } else td.textContent = "replayed";
    tr.appendChild(td);
    tbody.appendChild(tr);
  }
}

function draw(latest) {
  lineChart("orders", [rate("placed", s => s.counters.placed), rate("confirmed", s => s.counters.confirmed),
                       rate("rejected", s => s.counters.rejected)]);
  lineChart("latency", latencySeries());
  const durables = Object.keys(latest.pending).sort();
  // Not yet delivered plus delivered and not yet acked: what a durable still has to do.
  lineChart("pending", durables.map(d => ({name: d, points: history.map(s => {
    const p = s.pending[d] || {};
    return [s.at, (p.pending || 0) + (p.ack_pending || 0)];
  })})));
  lineChart("outbox", [{name: "events", points: history.map(s => [s.at, s.outbox.depth])}]);
  lineChart("outbox-age", [{name: "oldest", points: history.map(s => [s.at, s.outbox.oldest_age])}]);
  const hits = rate("hits", s => s.counters.cache_hits).points;
  const misses = rate("misses", s => s.counters.cache_misses).points;
  // No reads, no rate: the line stays empty rather than claiming 0 %.
  const hitRate = hits.map(([t, h], i) => [t, h + misses[i][1] > 0 ? h / (h + misses[i][1]) : null]);
  lineChart("cache", [{name: "hit rate", points: hitRate.filter(([, r]) => r !== null)}]);
  hopsChart(latest.hops);
  deadLetters(latest.dead_letters, latest.dead_letters_waiting);
}

async function poll() {
  const status = document.getElementById("status");
  try {
    const resp = await fetch(window.OPS_FIGURES, {headers: {Accept: "application/json"}});
    if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
    const latest = await resp.json();
    history.push(latest);
    while (history.length && history[0].at < latest.at - WINDOW) history.shift();
    draw(latest);
    const sampled = latest.jetstream_sampled_at ? Math.round(latest.at - latest.jetstream_sampled_at) : null;
    status.textContent = `live · ${new Date(latest.at * 1000).toLocaleTimeString()}` +
      (sampled !== null && sampled > 5 ? ` · JetStream figures ${sampled}s old (is the relay running?)` : "");
    status.className = "";
  } catch (err) {
    status.textContent = `cannot read figures: ${err.message}`;
    status.className = "stale";
  }
  setTimeout(poll, 1000);
}
poll();
