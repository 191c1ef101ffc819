// Live page: refresh the tables from /api/live and /api/agents every two seconds (text only, never HTML);
// an operator's own state ("My state") is set with PUT /api/agents/{id}, the session's CSRF token in the header.
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
  // times on the hotline's clock (the server's `timezone` setting), whatever the operator's computer is set to
  var zone = document.querySelector("[data-timezone]").getAttribute("data-timezone");
  function time(iso) {
    return iso ? new Date(iso).toLocaleTimeString("zh-CN", {
      timeZone: zone, hour12: false, hour: "2-digit", minute: "2-digit", second: "2-digit" }) : "";
  }
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
  var me = document.getElementById("me");
  function showMine(a) {
    document.getElementById("me-state").textContent = a.state;
    document.getElementById("me-since").textContent = time(a.since);
  }
  function mine() {
    return fetch("/api/agents/me", { credentials: "same-origin" }).then(function (r) {
      if (!r.ok) { throw new Error(r.status + " " + r.statusText); }
      return r.json();
    }).then(showMine);
  }
  function setMine(state) {
    var csrf = document.querySelector("form.logout input[name='csrf']").value;
    var error = document.getElementById("me-error");
    error.textContent = "";
    fetch("/api/agents/" + encodeURIComponent(me.dataset.agent), {
      method: "PUT", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify({ state: state })
    }).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) { throw new Error(body.detail || (r.status + " " + r.statusText)); }
        return body;
      });
    }).then(function (a) {
      showMine(a);
      agents();
      return mine();
    }).catch(function (e) {
      error.textContent = e.message;
    });
  }
  if (me) {
    me.querySelectorAll("button[data-state]").forEach(function (btn) {
      btn.addEventListener("click", function () { setMine(btn.dataset.state); });
    });
    setInterval(function () {
      mine().catch(function (e) { document.getElementById("me-error").textContent = e.message; });
    }, 2000);
  }
  setInterval(refresh, 2000);
  setInterval(agents, 2000);
})();
