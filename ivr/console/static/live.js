// Live page: refresh the tables from /api/live and /api/agents every two seconds (text only, never HTML).
(function () {
  "use strict";
  function fill(id, rows) {
    var body = document.querySelector("#" + id + " tbody");
    while (body.firstChild) { body.removeChild(body.firstChild); }
    rows.forEach(function (cells) {
      var tr = document.createElement("tr");
      cells.forEach(function (c) {
        var td = document.createElement("td");
        td.textContent = c === null || c === undefined ? "" : String(c);
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    document.getElementById("n-" + id).textContent = String(rows.length);
  }
  function time(iso) { return iso ? new Date(iso).toLocaleTimeString() : ""; }
  function refresh() {
    fetch("/api/live", { credentials: "same-origin" }).then(function (r) {
      if (!r.ok) { throw new Error(r.status + " " + r.statusText); }
      return r.json();
    }).then(function (s) {
      fill("calls", s.calls.map(function (c) {
        return [c.caller, time(c.started), c.state, c.line, (c.elderly ? "elderly " : "") + (c.urgent ? "urgent" : "")];
      }));
      fill("queue", s.queue.map(function (e) {
        return [e.position, e.caller, Math.round(e.waited_s),
                e.expected_wait_s === null ? "" : Math.round(e.expected_wait_s), e.priority];
      }));
      fill("callbacks", s.callbacks.map(function (c) {
        return [c.id, c.caller, time(c.requested_at), c.position, c.status, c.attempts];
      }));
      document.getElementById("live-at").textContent = time(s.at);
      document.getElementById("live-errors").textContent = s.errors.join("; ");
    }).catch(function (e) {
      document.getElementById("live-errors").textContent = "refresh failed: " + e.message;
    });
  }
  function agents() {
    fetch("/api/agents", { credentials: "same-origin" }).then(function (r) {
      if (!r.ok) { throw new Error(r.status + " " + r.statusText); }
      return r.json();
    }).then(function (list) {
      fill("agents", list.map(function (a) { return [a.id, a.name, a.groups.join(","), a.state, time(a.since)]; }));
    }).catch(function (e) {
      document.getElementById("live-errors").textContent = "operators: " + e.message;
    });
  }
  setInterval(refresh, 2000);
  setInterval(agents, 2000);
})();
