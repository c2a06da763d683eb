// Live parts of the storefront: one websocket helper (reconnect with backoff) and the pages that use it.
"use strict";

function wsUrl(path) {
  const port = document.body.dataset.wsPort;
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const host = port ? `${location.hostname}:${port}` : location.host;
  return `${scheme}//${host}${path}`;
}

// Open a websocket and keep it open: after a drop, retry after 0.5 s, 1 s, 2 s ... 10 s (with jitter).
// onOpen(send) runs on every (re)connection, so a page resubscribes and gets current state again.
function liveSocket(path, { onOpen, onMessage }) {
  const indicator = document.getElementById("live-state");
  let delay = 500;
  function setState(state, text) {
    if (indicator) { indicator.dataset.state = state; indicator.textContent = text; }
  }
  function connect() {
    const ws = new WebSocket(wsUrl(path));
    ws.onopen = () => {
      delay = 500;
      setState("open", "live");
      if (onOpen) onOpen((obj) => ws.send(JSON.stringify(obj)));
    };
    ws.onmessage = (e) => { try { onMessage(JSON.parse(e.data)); } catch (err) { console.error(err); } };
    ws.onclose = () => {
      setState("closed", "reconnecting…");
      setTimeout(connect, delay * (0.75 + Math.random() / 2));
      delay = Math.min(delay * 2, 10000);
    };
  }
  connect();
}

// Stock badges: every element with data-sku shows that SKU's level; newer versions only.
function followStock() {
  const badges = Array.from(document.querySelectorAll("[data-sku][data-version]"));
  if (!badges.length) return;
  const skus = Array.from(new Set(badges.map((b) => b.dataset.sku)));
  const labels = { in_stock: "In stock", low_stock: "Only a few left", sold_out: "Sold out" };
  liveSocket("/ws/stock/", {
    onOpen: (send) => { for (let i = 0; i < skus.length; i += 100) send({ subscribe: skus.slice(i, i + 100) }); },
    onMessage: (msg) => {
      if (msg.error) { console.warn("stock socket:", msg.error); return; }
      for (const b of document.querySelectorAll(`[data-sku="${CSS.escape(msg.sku)}"][data-version]`)) {
        if (Number(b.dataset.version) >= msg.version) continue;
        b.dataset.version = msg.version;
        b.dataset.available = msg.available;
        b.className = `badge ${msg.stock_status}`;
        b.textContent = b.dataset.exact === "1" && msg.available > 0
          ? `${msg.available} available` : labels[msg.stock_status];
        b.classList.add("changed");
        setTimeout(() => b.classList.remove("changed"), 800);
      }
      guardPurchases();
    },
  });
}

// What the live level allows: the same wording as shop/views.py (add_shortage, line_shortage).
function addShortage(name, wanted, available, inCart) {
  if (wanted + inCart <= available) return "";
  if (available <= 0) return `${name} is sold out: it can be ordered again once it is restocked.`;
  const left = available - inCart;
  if (left <= 0) return `Only ${available} of ${name} available, all of them already in your cart.`;
  const already = inCart ? ` (${inCart} already in your cart)` : "";
  return `Only ${available} of ${name} available${already}: you can add up to ${left}.`;
}

function lineShortage(name, quantity, available) {
  if (quantity <= available) return "";
  if (available <= 0) return `${name} is sold out: remove it, or wait until it is restocked.`;
  return `Only ${available} of ${name} available: lower the quantity to ${available}.`;
}

function availableOf(sku) {
  const badge = document.querySelector(`[data-sku="${CSS.escape(sku)}"][data-version]`);
  return badge ? Number(badge.dataset.available) : Infinity;
}

function say(node, text) { if (node) { node.textContent = text; node.hidden = !text; } }

// No purchase path for what the live level says is unavailable: the product's form, the cart's and the
// checkout's lines, each with the reason in words. Run on load, on each stock change and while typing.
function guardPurchases() {
  const buy = document.getElementById("buy");
  if (buy) {
    const input = buy.querySelector("input[name=quantity]");
    const available = availableOf(buy.dataset.buySku);
    const inCart = Number(buy.dataset.inCart || 0);
    const room = Math.max(0, Math.min(available - inCart, 1000));
    input.max = Math.max(1, room);
    const wanted = Math.max(1, Number(input.value) || 1);
    const note = addShortage(buy.dataset.buyName, room > 0 ? wanted : 1, available, inCart);
    buy.querySelector("button[type=submit]").disabled = Boolean(note);
    input.setAttribute("aria-invalid", note ? "true" : "false");
    say(document.getElementById("buy-note"), note);
  }
  const lines = document.querySelectorAll("[data-line-sku]");
  if (!lines.length) return;
  let short = false;
  for (const line of lines) {
    const note = lineShortage(line.dataset.lineName, Number(line.dataset.lineQuantity), availableOf(line.dataset.lineSku));
    say(line.querySelector(".line-note"), note);
    short = short || Boolean(note);
  }
  for (const gate of document.querySelectorAll("[data-gate]")) {
    if (gate.tagName === "A") gate.setAttribute("aria-disabled", String(short));
    else gate.disabled = short;
  }
  const gateNote = document.getElementById("gate-note");
  if (gateNote) gateNote.hidden = !short;
}

// Typing a quantity says at once whether it can be added; leaving the field caps it at what can be.
function followBuyForm() {
  const buy = document.getElementById("buy");
  if (!buy) return;
  const input = buy.querySelector("input[name=quantity]");
  input.addEventListener("input", guardPurchases);
  input.addEventListener("change", () => {
    const room = Math.min(availableOf(buy.dataset.buySku) - Number(buy.dataset.inCart || 0), 1000);
    if (room >= 1 && Number(input.value) > room) input.value = room;
    guardPurchases();
  });
  for (const gate of document.querySelectorAll("a[data-gate]")) {
    gate.addEventListener("click", (e) => { if (gate.getAttribute("aria-disabled") === "true") e.preventDefault(); });
  }
}

// Order page: status and timeline, merged by event id, with the milliseconds between entries.
function followOrder() {
  const root = document.getElementById("order");
  if (!root) return;
  const list = document.getElementById("timeline");
  const statusEl = document.getElementById("order-status");
  const reasonEl = document.getElementById("order-reason");
  const cancelForm = document.getElementById("cancel-form");
  const namesEl = document.getElementById("order-names");
  const names = namesEl ? JSON.parse(namesEl.textContent) : {};
  // The inventory names SKUs; a shopper reads product names (as shop/views.py customer_wording).
  const worded = (text) => {
    const t = (text || "").replace(/[A-Za-z0-9_-]+/g, (tok) => (Object.hasOwn(names, tok) ? names[tok] : tok));
    return t.charAt(0).toUpperCase() + t.slice(1);
  };
  const entries = new Map();
  for (const li of list.querySelectorAll("li[data-event-id]")) {
    entries.set(li.dataset.eventId, { event_id: li.dataset.eventId, type: li.dataset.type, at: li.dataset.at, detail: li.dataset.detail || "" });
  }
  function render() {
    const sorted = Array.from(entries.values()).sort((a, b) => (Date.parse(a.at) - Date.parse(b.at)) || (a.at < b.at ? -1 : 1));
    list.replaceChildren(...sorted.map((e, i) => {
      const li = document.createElement("li");
      li.dataset.eventId = e.event_id; li.dataset.type = e.type; li.dataset.at = e.at; li.dataset.detail = e.detail;
      const strong = document.createElement("strong"); strong.textContent = e.type; li.append(strong);
      const time = document.createElement("time"); time.dateTime = e.at; time.textContent = " " + new Date(e.at).toISOString().slice(11, 23) + " UTC"; li.append(time);
      if (i > 0) {
        const span = document.createElement("span"); span.className = "delta";
        span.textContent = `+${Math.round(Date.parse(e.at) - Date.parse(sorted[i - 1].at))} ms`; li.append(span);
      }
      if (e.detail) { const d = document.createElement("div"); d.className = "muted"; d.textContent = worded(e.detail); li.append(d); }
      return li;
    }));
  }
  function setStatus(status, reason) {
    statusEl.textContent = status; statusEl.className = `status ${status}`; root.dataset.status = status;
    if (reasonEl) { reasonEl.textContent = worded(reason); reasonEl.hidden = !reason; }
    if (cancelForm) cancelForm.hidden = !["pending", "confirmed"].includes(status);
  }
  liveSocket(`/ws/orders/${root.dataset.orderId}/`, {
    onMessage: (msg) => {
      if (msg.type === "snapshot") {
        entries.clear();
        for (const e of msg.timeline) entries.set(e.event_id, e);
        setStatus(msg.status, msg.reason);
      } else if (msg.type === "event") {
        entries.set(msg.entry.event_id, msg.entry);
      }
      render();
    },
  });
}

// Staff inventory table: on hand, reserved, available and version of every row, live. The socket sends
// every row on each (re)connection, so after a drop the table catches up with what changed meanwhile.
function followStaffStock() {
  const table = document.getElementById("inventory");
  if (!table) return;
  const staffLabels = { in_stock: "In stock", low_stock: "Low stock", sold_out: "Sold out" };
  liveSocket("/ws/staff/stock/", {
    onMessage: (msg) => {
      const row = table.querySelector(`tr[data-row-sku="${CSS.escape(msg.sku || "")}"]`);
      if (!row || Number(row.dataset.version) >= msg.version) return;
      row.dataset.version = msg.version;
      for (const key of ["on_hand", "reserved", "available", "version"]) {
        const cell = row.querySelector(`[data-field="${key}"]`);
        if (cell) cell.textContent = msg[key];
      }
      const badge = row.querySelector(".badge");
      if (badge) { badge.className = `badge ${msg.stock_status}`; badge.textContent = staffLabels[msg.stock_status]; }
    },
  });
}

document.addEventListener("DOMContentLoaded", () => {
  followBuyForm(); guardPurchases(); followStock(); followOrder(); followStaffStock();
});
