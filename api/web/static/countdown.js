// Live countdowns and the alert stream of the deadlines board and the breach register.
// No build step, no library. Times come from the page (data-due, UTC); the offset between
// this browser's clock and the server's is measured once from data-server-now, so a
// wrong clock on the auditor's machine does not move a deadline.
"use strict";
(function () {
  var table = document.getElementById("deadlines");
  var serverNow = table && table.dataset.serverNow ? Date.parse(table.dataset.serverNow) : NaN;
  var skew = isNaN(serverNow) ? 0 : serverNow - Date.now();

  function words(ms, unit) {
    var mins = Math.floor(Math.abs(ms) / 60000);
    var h = Math.floor(mins / 60), m = mins % 60, s = Math.floor(Math.abs(ms) / 1000) % 60;
    var text;
    if (unit === "days" && h >= 48) {
      text = Math.floor(h / 24) + " days " + (h % 24) + " h";
    } else {
      text = h + " h " + (m < 10 ? "0" : "") + m + " min";
      text += " " + (s < 10 ? "0" : "") + s + " s";
    }
    return ms > 0 ? text + " left" : "overdue by " + text;
  }

  function tick() {
    var now = Date.now() + skew;
    document.querySelectorAll(".countdown[data-due]").forEach(function (el) {
      var ms = Date.parse(el.dataset.due) - now;
      var text = words(ms, el.dataset.unit);
      if (el.textContent !== text) el.textContent = text;
      var row = el.closest("tr");
      if (ms <= 0) {
        el.classList.add("overdue");
        if (row) {
          row.classList.add("overdue");
          var st = row.querySelector(".status");
          if (st) st.textContent = "overdue";
        }
      }
    });
  }
  tick();
  setInterval(tick, 1000);

  var state = document.getElementById("stream-state");
  var list = document.getElementById("alerts");
  if (!state || !list || !window.EventSource) return;
  var WORDS = { "48h": "48 hours after awareness", "60h": "60 hours after awareness",
                "71h": "71 hours after awareness", "due-7d": "7 days before the date",
                "due-1d": "1 day before the date", "legal_overdue": "legal date passed",
                "raised": "finding raised", "overdue": "overdue" };
  function threshold(t) { return WORDS[t] || String(t || "").replace(/_/g, " "); }
  function local(iso) {
    var d = new Date(iso);
    var opts = { dateStyle: "medium", timeStyle: "short", timeZone: state.dataset.tz || "UTC" };
    return isNaN(d) ? iso : d.toLocaleString("en-GB", opts) +
      " (" + iso.slice(11, 16) + " UTC)";
  }
  var source = new EventSource(state.dataset.stream);
  source.onopen = function () { state.textContent = "Connected to the alert stream: new alerts appear here."; };
  source.onerror = function () { state.textContent = "Alert stream interrupted; reconnecting…"; };
  source.addEventListener("alert", function (ev) {
    var a;
    try { a = JSON.parse(ev.data); } catch (e) { return; }
    var li = document.createElement("li");
    li.className = "alert-item";
    li.dataset.case = a.kind + ":" + a.case;
    li.dataset.threshold = a.threshold;
    var message = (a.message || (a.kind + " " + a.case)).replace(
      /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z/g, local);
    li.textContent = threshold(a.threshold) + " — " + message;
    list.insertBefore(li, list.firstChild);
    var row = table && table.querySelector('tr[data-case="' + CSS.escape(a.kind + ":" + a.case) + '"]');
    if (row) {
      var cell = row.querySelector(".latest-alert");
      if (cell) cell.textContent = threshold(a.threshold) + ", sent " + local(a.emitted_at);
      if (a.threshold === "overdue") row.classList.add("overdue");
    } else if (a.kind !== "finding") {
      var more = document.createElement("a");
      more.href = window.location.pathname;
      more.textContent = "Reload the board to see this case.";
      li.appendChild(document.createTextNode(" "));
      li.appendChild(more);
    }
  });
})();
