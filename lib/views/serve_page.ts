/**
 * The page `serve` answers at `/`: one self-contained HTML document (no
 * external assets, no build step, no framework) that polls `/cluster` every
 * second and draws the topology, sentinel agreement, the leader lease holder
 * and a timeline of the last two minutes of Sentinel events as SVG.
 *
 * @module
 */

/** The dashboard page. */
export const DASHBOARD_HTML: string = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mn-redis-ha</title>
<link rel="icon" href="data:,">
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #1d2330; background: #fafbfc; }
  h1 { font-size: 1.3em; margin: 0 0 .2em; }
  h2 { font-size: 1.05em; margin: 1.2em 0 .4em; }
  table { border-collapse: collapse; min-width: 32em; background: #fff; }
  th, td { text-align: left; padding: .25em .8em; border-bottom: 1px solid #e3e6eb; }
  th { color: #5a6478; font-weight: 600; }
  .ok { color: #23783a; } .bad { color: #b3261e; font-weight: 600; } .warn { color: #a05a00; }
  #status { color: #5a6478; }
  svg text { font: 11px system-ui, sans-serif; fill: #333; }
</style>
</head>
<body>
<h1>mn-redis-ha <span id="status">connecting…</span></h1>
<div>Primary (majority of sentinels): <b id="primary">?</b> · config-epoch <span id="epoch">?</span>
 · leader lease: <b id="leader">?</b> · failovers seen: <span id="failovers">0</span></div>
<h2>This box</h2>
<table><thead><tr><th>Redis</th><th>Answers</th><th>Role</th><th>Link</th><th>Lag (bytes)</th></tr></thead>
<tbody id="self"></tbody></table>
<h2>Replicas</h2>
<table><thead><tr><th>Address</th><th>State</th><th>Lag (s)</th><th>Lag (bytes)</th></tr></thead>
<tbody id="replicas"></tbody></table>
<h2>Sentinels</h2>
<table><thead><tr><th>Sentinel</th><th>State</th><th>Reports</th><th>Config-epoch</th></tr></thead>
<tbody id="sentinels"></tbody></table>
<h2>Failover timeline (last 2 minutes)</h2>
<svg id="timeline" width="900" height="150" role="img" aria-label="Sentinel events over time"></svg>
<h2>Last failover, phase by phase</h2>
<pre id="phases">–</pre>
<h2>Recent events</h2>
<table><thead><tr><th>Time</th><th>Sentinel</th><th>Event</th><th>Payload</th></tr></thead>
<tbody id="events"></tbody></table>
<script>
"use strict";
const WINDOW_MS = 120000;
const COLOURS = { "+switch-master": "#b3261e", "+odown": "#a05a00", "-odown": "#23783a",
  "+convert-to-slave": "#5a3fb3", "+failover-end": "#1d63c9", "+sentinel": "#8a94a6" };
function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "–" : String(text);
  if (cls) td.className = cls;
  return td;
}
function rows(id, items, build) {
  const body = document.getElementById(id);
  body.replaceChildren(...items.map((item) => {
    const tr = document.createElement("tr");
    tr.append(...build(item));
    return tr;
  }));
}
function timeline(events) {
  const svg = document.getElementById("timeline");
  const ns = "http://www.w3.org/2000/svg";
  const now = Date.now();
  const width = 900, left = 130, lane = 22;
  const lanes = [...new Set(events.map((e) => e.sentinel))].sort();
  svg.setAttribute("height", String(40 + Math.max(1, lanes.length) * lane));
  const children = [];
  const add = (tag, attrs, text) => {
    const el = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
    if (text !== undefined) el.textContent = text;
    children.push(el);
  };
  const x = (t) => left + (width - left - 10) * (1 - (now - t) / WINDOW_MS);
  for (let s = 0; s <= 120; s += 30) {
    add("line", { x1: x(now - s * 1000), x2: x(now - s * 1000), y1: 10, y2: 20 + lanes.length * lane, stroke: "#e3e6eb" });
    add("text", { x: x(now - s * 1000) - 12, y: 32 + lanes.length * lane }, s === 0 ? "now" : "-" + s + "s");
  }
  lanes.forEach((name, i) => add("text", { x: 4, y: 26 + i * lane }, name));
  for (const e of events) {
    const t = Date.parse(e.at);
    if (now - t > WINDOW_MS) continue;
    const i = lanes.indexOf(e.sentinel);
    add("circle", { cx: x(t), cy: 22 + i * lane, r: 5, fill: COLOURS[e.channel] || "#333",
      "data-channel": e.channel }, undefined);
    children[children.length - 1].appendChild(document.createElementNS(ns, "title")).textContent =
      e.channel + " " + e.payload;
  }
  svg.replaceChildren(...children);
}
async function refresh() {
  try {
    const response = await fetch("/cluster", { cache: "no-store" });
    const data = await response.json();
    const box = data.box, topo = data.topology || {};
    document.getElementById("status").textContent = "updated " + new Date().toLocaleTimeString();
    document.getElementById("primary").textContent = box.primary || "none agreed";
    document.getElementById("primary").className = box.primary ? "ok" : "bad";
    document.getElementById("epoch").textContent = box.configEpoch ?? "–";
    document.getElementById("leader").textContent = topo.leader || "none";
    document.getElementById("failovers").textContent = data.failovers;
    rows("self", [box.self], (s) => [cell(s.address), cell(s.reachable ? "yes" : "no", s.reachable ? "ok" : "bad"),
      cell(s.role), cell(s.linkUp === null ? null : s.linkUp ? "up" : "down", s.linkUp === false ? "bad" : ""), cell(s.lagBytes)]);
    rows("replicas", topo.replicas || [], (r) => [cell(r.address), cell(r.state, r.state === "online" ? "ok" : "warn"),
      cell(r.lagSeconds), cell(r.offsetLag)]);
    rows("sentinels", box.sentinels, (s) => [cell(s.address), cell(s.state, s.state === "ok" ? "ok" : "bad"),
      cell(s.reports, s.reports === box.primary ? "ok" : "warn"), cell(s.configEpoch)]);
    rows("events", data.events.slice(-20).reverse(), (e) => [cell(new Date(e.at).toLocaleTimeString()),
      cell(e.sentinel), cell(e.channel), cell(e.payload)]);
    timeline(data.events);
    document.getElementById("phases").textContent = (data.lastFailover || []).join("\\n");
  } catch (error) {
    document.getElementById("status").textContent = "cannot reach the server (" + error.message + ")";
  }
}
refresh();
setInterval(refresh, 1000);
</script>
</body>
</html>
`;
