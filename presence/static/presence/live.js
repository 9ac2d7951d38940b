// The live presence page: polls the page's JSON (presence/admin_views.py) and redraws the
// figures, the processes and the searched user, so the page stays current without a reload.
"use strict";

(function () {
  const root = document.getElementById("live-presence");
  const dataUrl = root.dataset.url;
  const intervalMs = Number(root.dataset.intervalMs);
  const form = document.getElementById("live-search");
  const input = document.getElementById("live-address");
  let searched = input.value.trim();
  // A new search makes answers to polls already on their way stale.
  let generation = 0;
  let timer = null;

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    Object.assign(node, props || {});
    for (const child of children) {
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function utc(ms) {
    return new Date(ms).toISOString().replace("T", " ").slice(0, 19) + " UTC";
  }

  function seen(ms) {
    if (ms === null) {
      return "never";
    }
    const ago = Math.max(0, Math.round((Date.now() - ms) / 1000));
    return `${utc(ms)} (${ago} s ago)`;
  }

  function status(name) {
    return el("span", { className: `status-${name}` }, name);
  }

  function number(value) {
    return el("td", { className: "number" }, value === null ? "–" : value);
  }

  function drawProcesses(processes) {
    const rows = processes.map((p) => {
      const age = p.alive
        ? number(p.heartbeat_age_seconds === null ? null : `${p.heartbeat_age_seconds.toFixed(1)} s`)
        : el("td", { className: "number" }, "expired: being reaped");
      const row = el(
        "tr",
        { className: p.alive ? "" : "dead" },
        el("td", { className: "address" }, p.name),
        age,
        number(p.connections),
        number(p.presence_subscriptions),
        number(p.peak_presence_backlog),
      );
      row.dataset.process = p.name;
      return row;
    });
    document.getElementById("live-processes").replaceChildren(...rows);
  }

  function drawUser(user) {
    const box = document.getElementById("live-user");
    if (user === null) {
      box.replaceChildren();
      return;
    }
    if (user.error) {
      box.replaceChildren(el("p", { className: "error", id: "live-user-error" }, user.error));
      return;
    }
    const friends = user.online_friends.length
      ? el(
          "table",
          {},
          el("thead", {}, el("tr", {}, el("th", {}, "Friend"), el("th", {}, "Status"), el("th", {}, "Since"))),
          el(
            "tbody",
            {},
            ...user.online_friends.map((f) =>
              el("tr", {}, el("td", { className: "address" }, f.address), el("td", {}, status(f.status)), el("td", {}, seen(f.last_seen))),
            ),
          ),
        )
      : "none";
    const connections = user.connections.length
      ? el(
          "ul",
          {},
          ...user.connections.map((c) =>
            el("li", {}, el("span", { className: "address" }, c), `: ${user.connection_devices[c]}`),
          ),
        )
      : "none";
    box.replaceChildren(
      el(
        "dl",
        { id: "live-user-details" },
        el("dt", {}, "Address"),
        el("dd", {}, el("a", { href: user.admin_url, className: "address" }, user.address)),
        el("dt", {}, "Status (as friends see it)"),
        el(
          "dd",
          { id: "live-user-status" },
          status(user.status),
          user.appears_offline ? " (connected, appearing offline)" : "",
        ),
        el("dt", {}, "Devices (as friends see them)"),
        el("dd", { id: "live-user-devices" }, user.devices.length ? user.devices.join(", ") : "none"),
        el("dt", {}, "Last seen"),
        el("dd", { id: "live-user-last-seen" }, seen(user.last_seen)),
        el("dt", {}, "Location"),
        el(
          "dd",
          { id: "live-user-location" },
          user.location ? `${user.location.realm} (${user.location.x}, ${user.location.y})` : "not shared",
        ),
        el("dt", {}, "Status message"),
        el(
          "dd",
          { id: "live-user-message" },
          user.message ? `"${user.message}"` : "none",
          user.message && user.message_until !== null ? `, until ${utc(user.message_until)}` : "",
        ),
        el("dt", {}, "Chosen status ends"),
        el("dd", { id: "live-user-status-until" }, user.status_until === null ? "never" : utc(user.status_until)),
        el("dt", {}, `Open connections: ${user.connections.length}`),
        el("dd", { id: "live-user-connections" }, connections),
        el("dt", {}, `Friends online or away: ${user.online_friends.length}`),
        el("dd", { id: "live-user-friends" }, friends),
      ),
    );
  }

  function draw(data) {
    document.getElementById("live-online").textContent = data.summary.online;
    document.getElementById("live-away").textContent = data.summary.away;
    drawProcesses(data.processes);
    drawUser(data.user);
  }

  function report(text, stale) {
    const line = document.getElementById("live-updated");
    line.textContent = text;
    line.classList.toggle("stale", stale);
  }

  async function poll() {
    const asked = generation;
    const url = new URL(dataUrl, window.location.href);
    if (searched) {
      url.searchParams.set("address", searched);
    }
    try {
      const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
      const body = await response.json();
      if (!response.ok) {
        throw new Error(`HTTP ${response.status}: ${body.detail || ""}`);
      }
      if (asked !== generation) {
        return;
      }
      draw(body);
      report(`Updated ${utc(Date.now())}, every ${intervalMs / 1000} s`, false);
    } catch (error) {
      report(`Could not update (${error.message}); trying again`, true);
    }
    schedule(intervalMs);
  }

  function schedule(delay) {
    clearTimeout(timer);
    timer = setTimeout(poll, delay);
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    searched = input.value.trim();
    generation += 1;
    const here = new URL(window.location.href);
    if (searched) {
      here.searchParams.set("address", searched);
    } else {
      here.searchParams.delete("address");
    }
    window.history.replaceState(null, "", here);
    schedule(0);
  });

  schedule(0);
})();
