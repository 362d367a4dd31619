// The compliance dashboard: initial state from the page, then live updates from
// /ws/events/ (committed events) and /ws/dashboard/ (AML alerts, totals, checkpoints).
// Both sockets use the session cookie and reconnect by themselves.
(function () {
  "use strict";

  const state = JSON.parse(document.getElementById("dashboard-state").textContent);
  const MAX_EVENT_ROWS = 200;
  const RENDER_EVERY_MS = 150;
  const scales = {};
  const ledgerRows = {};
  const alertRows = {};
  let pendingEvents = [];
  const sockets = {};

  function formatMinor(ledger, amount) {
    if (amount === null || amount === undefined) return "";
    const scale = scales[ledger] || 0;
    const negative = amount < 0;
    let digits = String(Math.abs(amount));
    if (scale > 0) {
      digits = digits.padStart(scale + 1, "0");
      digits = digits.slice(0, -scale) + "." + digits.slice(-scale);
    }
    const [whole, fraction] = digits.split(".");
    const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    return (negative ? "-" : "") + grouped + (fraction !== undefined ? "." + fraction : "") +
      " " + ledger;
  }

  function cell(row, text, className) {
    const td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "" : String(text);
    if (className) td.className = className;
    row.appendChild(td);
    return td;
  }

  function shortAccount(id) {
    return id ? id.replace(/^(acc_[a-z0-9]+_)(.{6}).*$/, "$1$2…") : "";
  }

  // -- ledgers: totals and checkpoints ----------------------------------------------------
  function ledgerRow(code) {
    let row = ledgerRows[code];
    if (!row) {
      row = document.createElement("tr");
      row.dataset.ledger = code;
      for (const name of ["code", "outstanding", "customer", "seq", "checkpoint"]) {
        cell(row, "", name === "outstanding" || name === "customer" ? "amount" : name)
          .dataset.field = name;
      }
      row.querySelector('[data-field="code"]').textContent = code;
      document.querySelector("#ledgers tbody").appendChild(row);
      ledgerRows[code] = row;
    }
    return row;
  }

  function setTotals(totals) {
    const row = ledgerRow(totals.ledger);
    row.querySelector('[data-field="outstanding"]').textContent =
      formatMinor(totals.ledger, totals.outstanding_minor);
    row.querySelector('[data-field="customer"]').textContent =
      formatMinor(totals.ledger, totals.customer_funds_minor);
    row.querySelector('[data-field="seq"]').textContent = totals.seq;
  }

  function setCheckpoint(checkpoint) {
    const row = ledgerRow(checkpoint.ledger);
    row.querySelector('[data-field="checkpoint"]').textContent =
      "#" + checkpoint.height + " · " + checkpoint.tree_size + " events · " +
      new Date(checkpoint.created_at).toLocaleTimeString();
  }

  // -- alerts -----------------------------------------------------------------------------
  function upsertAlert(alert) {
    const body = document.querySelector("#alerts tbody");
    if (!body) return;
    let row = alertRows[alert.id];
    const fresh = !row;
    if (fresh) {
      row = document.createElement("tr");
      row.dataset.alertId = alert.id;
      row.dataset.rule = alert.rule;
      row.dataset.eventId = alert.event_id;
      const link = document.createElement("a");
      link.href = "/admin/aml/alert/" + alert.id + "/change/";
      link.textContent = alert.id;
      cell(row, "").appendChild(link);
      cell(row, new Date(alert.created_at).toLocaleTimeString());
      cell(row, alert.ledger);
      cell(row, alert.rule.replace(/_/g, " "));
      cell(row, shortAccount(alert.account), "account").title = alert.account || "";
      cell(row, formatMinor(alert.ledger, alert.amount), "amount");
      const status = cell(row, "");
      status.dataset.field = "status";
      alertRows[alert.id] = row;
    }
    const status = row.querySelector('[data-field="status"]');
    status.innerHTML = "";
    const badge = document.createElement("span");
    badge.className = "status status-" + alert.status;
    badge.textContent = alert.status;
    status.appendChild(badge);
    row.dataset.status = alert.status;
    if (fresh) {
      row.classList.add("fresh");
      body.insertBefore(row, body.firstChild);
    }
  }

  // -- events -----------------------------------------------------------------------------
  function eventRow(ledger, event) {
    const row = document.createElement("tr");
    row.dataset.eventId = event.id;
    row.dataset.seq = event.seq;
    row.className = "fresh";
    const debit = event.legs.find((leg) => leg.amount < 0);
    const credit = event.legs.find((leg) => leg.amount > 0);
    cell(row, ledger);
    cell(row, event.seq);
    cell(row, event.type.replace(/_/g, " "));
    cell(row, debit ? shortAccount(debit.account) : "", "account");
    cell(row, credit ? shortAccount(credit.account) : "", "account");
    cell(row, credit ? formatMinor(ledger, credit.amount) : "", "amount");
    cell(row, new Date(event.ts / 1e6).toLocaleTimeString());
    return row;
  }

  function renderEvents() {
    if (!pendingEvents.length) return;
    const body = document.querySelector("#events tbody");
    const batch = pendingEvents.slice(-MAX_EVENT_ROWS);
    pendingEvents = [];
    const fragment = document.createDocumentFragment();
    for (let i = batch.length - 1; i >= 0; i--) {
      fragment.appendChild(eventRow(batch[i][0], batch[i][1]));
    }
    body.insertBefore(fragment, body.firstChild);
    while (body.rows.length > MAX_EVENT_ROWS) body.deleteRow(body.rows.length - 1);
  }

  // -- sockets ----------------------------------------------------------------------------
  function showConnection() {
    const live = Object.values(sockets).every((ws) => ws.readyState === WebSocket.OPEN);
    const badge = document.getElementById("connection");
    badge.dataset.state = live ? "live" : "connecting";
    badge.textContent = live ? "live" : "reconnecting…";
  }

  function connect(path, onFrame) {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const ws = new WebSocket(scheme + location.host + path);
    sockets[path] = ws;
    ws.onopen = showConnection;
    ws.onmessage = (message) => onFrame(JSON.parse(message.data));
    ws.onclose = () => {
      showConnection();
      setTimeout(() => connect(path, onFrame), 1000);
    };
  }

  for (const ledger of state.ledgers) {
    scales[ledger.code] = ledger.scale;
    ledgerRow(ledger.code);
    if (ledger.totals) setTotals(ledger.totals);
    if (ledger.checkpoint) setCheckpoint(ledger.checkpoint);
  }
  for (const alert of (state.alerts || []).slice().reverse()) upsertAlert(alert);
  document.querySelectorAll("#alerts tr.fresh").forEach((row) => row.classList.remove("fresh"));

  connect("/ws/events/", (frame) => {
    if (frame.type !== "events") return;
    for (const event of frame.events) pendingEvents.push([frame.ledger, event]);
  });
  connect("/ws/dashboard/", (message) => {
    if (message.type === "alert") upsertAlert(message.alert);
    else if (message.type === "totals") setTotals(message.totals);
    else if (message.type === "checkpoint") setCheckpoint(message.checkpoint);
  });
  setInterval(renderEvents, RENDER_EVERY_MS);
})();
