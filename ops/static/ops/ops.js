// The ops page: draws the server's history of figures (ops/history.py) as plain SVG charts, then follows
// it every second; no library, no build step. Times are UTC, 24-hour, as everywhere else.
"use strict";
const WINDOW = Number(document.body.dataset.historySeconds) || 900;  // seconds on the line charts
const RATE_WINDOW = 5;         // seconds a rate is averaged over (batches make counters move in steps)
const COLORS = ["#2f6fdf", "#e0742b", "#2a9d5b", "#b03aa8", "#c9a227", "#d64545", "#4bb3c4"];
const HOPS = JSON.parse(document.getElementById("ops-hops").textContent);
const samples = [];            // the history, oldest first
const NS = "http://www.w3.org/2000/svg";

function el(name, attrs, parent) {
  const node = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

function nice(x) { return x === 0 ? "0" : x >= 100 ? x.toFixed(0) : x >= 1 ? x.toFixed(1) : x.toFixed(3); }
function utc(seconds) { return new Date(seconds * 1000).toISOString().slice(11, 19) + " UTC"; }

// The legend of a chart, in the page's own text size: each series' colour, name and latest value.
function legend(id, series, format) {
  const box = document.getElementById(`${id}-legend`);
  box.replaceChildren(...series.map((s, i) => {
    const span = document.createElement("span");
    const swatch = document.createElement("i");
    swatch.style.background = COLORS[i % COLORS.length];
    const last = s.points.length ? s.points[s.points.length - 1][1] : null;
    span.append(swatch, `${s.name}: ${last === null || last === undefined ? "–" : format(last)}`);
    return span;
  }));
}

// series: [{name, points: [[t, y | null], ...]}]; a null breaks the line (no value then, not zero).
// options.max fixes the top of the axis (a ratio tops at 1); options.format writes a value.
function lineChart(id, series, options = {}) {
  const format = options.format || nice;
  const svg = document.getElementById(id);
  svg.replaceChildren();
  const [w, h, left, bottom] = [480, 180, 52, 22];
  const now = samples.length ? samples[samples.length - 1].at : Date.now() / 1000;
  const values = series.flatMap(s => s.points.map(p => p[1]).filter(y => y !== null));
  const highest = Math.max(0, ...values);
  const max = options.max || (highest > 0 ? highest * 1.1 : 1);  // all zero: an axis of 0 to 1, not to 0.000
  el("line", {x1: left, y1: h - bottom, x2: w, y2: h - bottom, class: "axis"}, svg);
  el("line", {x1: left, y1: 4, x2: left, y2: h - bottom, class: "axis"}, svg);
  el("text", {x: left - 4, y: 14, "text-anchor": "end"}, svg).textContent = format(max);
  el("text", {x: left - 4, y: h - bottom, "text-anchor": "end"}, svg).textContent = format(0);
  for (const back of [WINDOW, (2 * WINDOW) / 3, WINDOW / 3, 0]) {
    const x = left + (w - left) * (1 - back / WINDOW);
    el("text", {x, y: h - 5, "text-anchor": back === WINDOW ? "start" : back === 0 ? "end" : "middle"}, svg)
      .textContent = back === 0 ? "now" : `-${Math.round(back / 60)} min`;
  }
  let drawn = 0;
  series.forEach((s, i) => {
    let run = [];
    const flush = () => {
      if (run.length) el("polyline", {points: run.join(" "), fill: "none", stroke: COLORS[i % COLORS.length],
                                      "stroke-width": 1.8}, svg);
      if (run.length === 1) el("circle", {cx: run[0].split(",")[0], cy: run[0].split(",")[1], r: 2,
                                          fill: COLORS[i % COLORS.length]}, svg);
      run = [];
    };
    for (const [t, y] of s.points) {
      if (y === null || now - t > WINDOW) { flush(); continue; }
      run.push(`${left + (w - left) * (1 - (now - t) / WINDOW)},${(h - bottom) - (h - bottom - 4) * Math.min(1, y / max)}`);
      drawn++;
    }
    flush();
  });
  svg.dataset.points = drawn;
  svg.dataset.oldest = samples.length ? samples[0].at : "";
  legend(id, series, format);
}

// Rate of a counter over the last RATE_WINDOW seconds, at each sample (as Prometheus' rate()).
function rate(key, pick) {
  const points = [];
  let j = 0;
  for (let i = 1; i < samples.length; i++) {
    const b = samples[i];
    while (j < i - 1 && samples[j + 1].at <= b.at - RATE_WINDOW) j++;
    const a = samples[j];
    const dt = b.at - a.at;
    if (dt > 0) points.push([b.at, Math.max(0, (pick(b) - pick(a)) / dt)]);
  }
  return {name: key, points};
}

function hopsChart(orders) {
  const svg = document.getElementById("hops");
  svg.replaceChildren();
  const [w, h, left, bottom] = [960, 220, 52, 14];
  const max = Math.max(1e-6, ...orders.map(o => o.total)) * 1.05;
  const bar = (w - left) / Math.max(1, orders.length);
  el("text", {x: left - 4, y: 14, "text-anchor": "end"}, svg).textContent = nice(max);
  el("text", {x: left - 4, y: h - bottom, "text-anchor": "end"}, svg).textContent = "0";
  if (!orders.length) {
    el("text", {x: w / 2, y: h / 2, "text-anchor": "middle", class: "empty"}, svg).textContent = "no order decided yet";
  }
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
  document.getElementById("hops-legend").replaceChildren(...HOPS.map((hop, j) => {
    const span = document.createElement("span");
    const swatch = document.createElement("i");
    swatch.style.background = COLORS[j % COLORS.length];
    span.append(swatch, hop);
    return span;
  }));
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

// A table body refilled from rows: emptied, then one row saying so when there is none.
function tableBody(selector, empty, columns, id, text) {
  const tbody = document.querySelector(selector);
  tbody.replaceChildren();
  if (empty) {
    const tr = document.createElement("tr");
    const td = document.createElement("td");
    td.colSpan = columns; td.className = "empty"; td.id = id;
    td.textContent = text;
    tr.appendChild(td); tbody.appendChild(tr);
  }
  return tbody;
}

// One cell per [value, class] pair, appended to the row.
function cells(tr, values) {
  for (const [value, cls] of values) {
    const td = document.createElement("td");
    td.textContent = value;
    if (cls) td.className = cls;
    tr.appendChild(td);
  }
}

const dateTime = (iso) => new Date(iso).toISOString().replace("T", " ").slice(0, 19);

function deadLetters(rows, waiting) {
  document.getElementById("dl-count").textContent = `(${waiting} waiting)`;
  const tbody = tableBody("#dead-letters tbody", !rows.length, 7, "dl-empty",
                          "No dead letters: every message so far was handled.");
  for (const d of rows) {
    const tr = document.createElement("tr");
    if (d.replayed_at) tr.className = "replayed";
    cells(tr, [[d.id], [d.consumer], [d.subject], [d.deliveries], [d.error, "error"], [dateTime(d.created_at) + " UTC"]]);
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

function failedEvents(rows, count) {
  document.getElementById("failed-count").textContent = `(${count})`;
  const tbody = tableBody("#failed-events tbody", !rows.length, 6, "failed-empty",
                          "None: JetStream took every event so far.");
  for (const e of rows) {
    const tr = document.createElement("tr");
    cells(tr, [[e.event_id], [e.type], [e.subject], [e.attempts], [e.error, "error"], [e.retry_at ? dateTime(e.retry_at) : ""]]);
    tbody.appendChild(tr);
  }
}

const ms = (x) => `${(x * 1000).toFixed(x < 0.01 ? 1 : 0)} ms`;
const percent = (x) => `${Math.round(x * 100)} %`;

function drawHistory() {
  lineChart("orders", [rate("placed", s => s.counters.placed), rate("confirmed", s => s.counters.confirmed),
                       rate("rejected", s => s.counters.rejected)]);
  // Real quantiles of the orders confirmed in the last seconds of each sample; none, no value.
  lineChart("latency", [{name: "p50", points: samples.map(s => [s.at, s.latency.p50])},
                        {name: "p99", points: samples.map(s => [s.at, s.latency.p99])}], {format: ms});
  const latest = samples[samples.length - 1];
  const idle = !latest || !latest.latency.orders;
  const note = document.getElementById("latency-empty");
  note.hidden = !idle;
  note.textContent = latest ? `No order confirmed in the last ${latest.latency.window || 10} s.` : "No figures yet.";
  const durables = Array.from(new Set(samples.flatMap(s => Object.keys(s.pending)))).sort();
  // Not yet delivered plus delivered and not yet acked: what a durable still has to do.
  lineChart("pending", durables.map(d => ({name: d, points: samples.map(s => {
    const p = s.pending[d];
    return [s.at, p ? (p.pending || 0) + (p.ack_pending || 0) : null];
  })})));
  lineChart("outbox", [{name: "events", points: samples.map(s => [s.at, s.outbox.depth])}]);
  lineChart("outbox-age", [{name: "oldest", points: samples.map(s => [s.at, s.outbox.oldest_age])}]);
  const hits = rate("hits", s => s.counters.cache_hits).points;
  const misses = rate("misses", s => s.counters.cache_misses).points;
  // No reads, no rate: the line breaks rather than claiming 0 %.
  const hitRate = hits.map(([t, h], i) => [t, h + misses[i][1] > 0 ? h / (h + misses[i][1]) : null]);
  lineChart("cache", [{name: "hit rate", points: hitRate}], {max: 1, format: percent});
}

async function getJson(url) {
  const resp = await fetch(url, {headers: {Accept: "application/json"}});
  if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
  return resp.json();
}

async function poll() {
  const status = document.getElementById("status");
  try {
    const since = samples.length ? samples[samples.length - 1].at : 0;
    const [history, latest] = await Promise.all([getJson(`${window.OPS_HISTORY}?since=${since}`), getJson(window.OPS_FIGURES)]);
    samples.push(...history.samples);
    while (samples.length && samples[0].at < latest.at - WINDOW) samples.shift();
    drawHistory();
    hopsChart(latest.hops);
    deadLetters(latest.dead_letters, latest.dead_letters_waiting);
    failedEvents(latest.failed_events, latest.outbox.failed);
    const sampled = latest.jetstream_sampled_at ? Math.round(latest.at - latest.jetstream_sampled_at) : null;
    const last = samples.length ? samples[samples.length - 1].at : null;
    status.textContent = `live · ${utc(latest.at)}` +
      (last === null || latest.at - last > 5 ? " · no history sampled lately (is a web process running?)" : "") +
      (sampled !== null && sampled > 5 ? ` · JetStream figures ${sampled}s old (is the relay running?)` : "");
    status.className = "";
  } catch (err) {
    status.textContent = `cannot read figures: ${err.message}`;
    status.className = "stale";
  }
  setTimeout(poll, 1000);
}
poll();
