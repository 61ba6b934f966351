// The dashboard's page (tools/Dashboard/DashboardServer.cs): plain JS and SVG, no libraries.
// The first data comes from /api; after that /api/events pushes a "tick" every second and a
// "topology" when the graph changes. Each link keeps the last hour of points for its chart; the
// sparklines show the last minute.
'use strict';

const SVG = 'http://www.w3.org/2000/svg';
const HOUR = 3600, MINUTE = 60;
const series = new Map();      // link name -> [{t, rBps, oBps, drops}], oldest first
let selected = null;           // the link whose chart is shown
const linkNames = new Map();   // link id -> name, for the zones table

const $ = (sel) => document.querySelector(sel);
const el = (tag, attrs = {}, text) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
};
const svgEl = (tag, attrs = {}) => {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
};
const rate = (bps) => bps >= 1e9 ? (bps / 1e9).toFixed(2) + 'G' : bps >= 1e6 ? (bps / 1e6).toFixed(2) + 'M'
  : bps >= 1e3 ? (bps / 1e3).toFixed(1) + 'K' : String(bps);
const bytes = (n) => n == null ? '-' : n >= 1 << 30 ? (n / (1 << 30)).toFixed(1) + 'G' : n >= 1 << 20 ? (n / (1 << 20)).toFixed(1) + 'M'
  : n >= 1 << 10 ? (n / (1 << 10)).toFixed(1) + 'K' : String(n);

async function api(path, init) {
  const r = await fetch('/api/' + path, init);
  if (!r.ok) throw new Error((await r.json().catch(() => ({ error: r.statusText }))).error);
  return r.json();
}

// ---- topology: a layered drawing, each node one layer below the node it hangs from ----

// The Observe model (tools/Observe/Topology.cs) as a graph: the host on top, each link under the
// link it is over (or the host), a wire under its NIC(s), each ready or running zone under its links.
function graphOf(topo) {
  const nodes = [], edges = [];
  const host = topo.hosts[0];
  nodes.push({ id: host.id, kind: 'host', label: host.name, state: 'up' });
  const names = new Map();
  for (const l of host.links) {
    names.set(l.id, l.name);
    nodes.push({ id: l.id, kind: l.class, label: l.name, state: l.state });
    edges.push({ from: l.over || host.id, to: l.id });
  }
  for (const w of topo.wires) {
    const ends = [w.a, w.b].filter(id => names.has(id));
    const far = [w.a, w.b].find(id => !names.has(id));
    nodes.push({ id: w.id, kind: 'wire', label: far ? 'wire to ' + far.replace('/link/', ' link ') : 'wire', state: 'up' });
    for (const id of ends) edges.push({ from: id, to: w.id });
  }
  for (const z of host.zones) {
    if (z.state !== 'ready' && z.state !== 'running') continue;
    nodes.push({ id: z.id, kind: z.isVm ? 'vm' : 'zone', label: z.alias ? `${z.alias} (${z.name})` : z.name, name: z.name, state: z.state });
    for (const id of z.links) edges.push({ from: id, to: z.id });
  }
  return { host: host.name, nodes, edges };
}

function drawTopology(model) {
  const topo = graphOf(model);
  $('#host-name').textContent = topo.host;
  const svg = $('#topology');
  svg.replaceChildren();
  const depth = new Map(), children = new Map();
  for (const e of topo.edges) {
    if (!children.has(e.from)) children.set(e.from, []);
    children.get(e.from).push(e.to);
  }
  const root = topo.nodes.find(n => n.kind === 'host');
  const queue = root ? [root.id] : [];
  if (root) depth.set(root.id, 0);
  while (queue.length) {
    const id = queue.shift();
    for (const c of children.get(id) || []) {
      if (!depth.has(c)) { depth.set(c, depth.get(id) + 1); queue.push(c); }
    }
  }
  const layers = [];
  for (const n of topo.nodes) {
    const d = depth.has(n.id) ? depth.get(n.id) : 1;
    (layers[d] ||= []).push(n);
  }
  const width = svg.clientWidth || 900, rowH = 70, boxH = 26;
  svg.setAttribute('viewBox', `0 0 ${width} ${Math.max(1, layers.length) * rowH + 10}`);
  const pos = new Map();
  layers.forEach((nodes, d) => {
    const step = width / (nodes.length + 1);
    nodes.forEach((n, i) => pos.set(n.id, { x: step * (i + 1), y: 20 + d * rowH }));
  });
  for (const e of topo.edges) {
    const a = pos.get(e.from), b = pos.get(e.to);
    if (!a || !b) continue;
    svg.appendChild(svgEl('line', { class: 'edge', x1: a.x, y1: a.y + boxH / 2, x2: b.x, y2: b.y - boxH / 2, 'data-from': e.from, 'data-to': e.to }));
  }
  for (const n of topo.nodes) {
    const p = pos.get(n.id);
    const w = Math.max(60, n.label.length * 7 + 12);
    const g = svgEl('g', { class: `node kind-${n.kind} state-${n.state}`, 'data-id': n.id, 'data-name': n.name || n.label, transform: `translate(${p.x},${p.y})` });
    g.appendChild(svgEl('rect', { x: -w / 2, y: -boxH / 2, width: w, height: boxH }));
    const t = svgEl('text', {});
    t.textContent = n.label;
    g.appendChild(t);
    const title = svgEl('title', {});
    title.textContent = `${n.kind} ${n.label} (${n.state})`;
    g.appendChild(title);
    svg.appendChild(g);
  }
}

// ---- links: the table, sparklines and the chart ----

function remember(name, point) {
  if (!series.has(name)) series.set(name, []);
  const s = series.get(name);
  if (s.length && s[s.length - 1].t >= point.t) return;
  s.push(point);
  if (s.length > HOUR) s.splice(0, s.length - HOUR);
}

function polyline(points, pick, w, h, max, cls) {
  const n = points.length;
  const coords = points.map((p, i) => `${n < 2 ? 0 : (i * w / (n - 1)).toFixed(1)},${(h - pick(p) * h / max).toFixed(1)}`).join(' ');
  return svgEl('polyline', { class: cls, points: coords });
}

function sparkline(name) {
  const pts = (series.get(name) || []).slice(-MINUTE);
  const svg = svgEl('svg', { class: 'spark', width: 120, height: 20, viewBox: '0 0 120 20' });
  const max = Math.max(1, ...pts.map(p => Math.max(p.rBps, p.oBps)));
  svg.appendChild(polyline(pts, p => p.rBps, 120, 20, max, 'rx'));
  svg.appendChild(polyline(pts, p => p.oBps, 120, 20, max, 'tx'));
  const dmax = Math.max(1, ...pts.map(p => p.drops));
  if (pts.some(p => p.drops > 0)) svg.appendChild(polyline(pts, p => p.drops, 120, 20, dmax, 'drop'));
  return svg;
}

function drawLinks(links) {
  const body = $('#links tbody');
  body.replaceChildren();
  linkNames.clear();
  for (const l of links) {
    linkNames.set(l.id, l.name);
    if (l.rate) remember(l.name, l.rate);
    const tr = el('tr', { 'data-link': l.name });
    if (l.name === selected) tr.classList.add('selected');
    const cells = [['name', l.name], ['class', l.class], ['over', l.over || '--'], ['zone', l.zone], ['state', l.state],
      ['ipackets', l.iPackets], ['opackets', l.oPackets], ['rbytes', l.rBytes], ['obytes', l.oBytes], ['drops', l.drops],
      ['rbps', l.rate ? rate(l.rate.rBps) : '-'], ['obps', l.rate ? rate(l.rate.oBps) : '-']];
    for (const [cls, v] of cells) tr.appendChild(el('td', { class: cls }, String(v)));
    const spark = el('td', { class: 'spark-cell' });
    spark.appendChild(sparkline(l.name));
    tr.appendChild(spark);
    tr.addEventListener('click', () => select(l.name));
    body.appendChild(tr);
  }
  const sel = $('#capture-link');
  const keep = sel.value;
  sel.replaceChildren(...links.map(l => el('option', { value: l.name }, l.name)));
  if (links.some(l => l.name === keep)) sel.value = keep;
  if (selected) drawChart();
}

async function select(name) {
  selected = name;
  try {
    const s = await api('series/' + encodeURIComponent(name));
    for (const p of s.points) remember(name, p);
  } catch (e) { /* the link went away: the chart shows what the page kept */ }
  for (const tr of document.querySelectorAll('#links tbody tr')) tr.classList.toggle('selected', tr.dataset.link === name);
  drawChart();
}

function drawChart() {
  $('#chart-box').hidden = false;
  $('#chart-link').textContent = selected;
  const svg = $('#chart');
  svg.replaceChildren();
  const w = svg.clientWidth || 900, h = 200, left = 60;
  svg.setAttribute('viewBox', `0 0 ${w} ${h + 20}`);
  const pts = series.get(selected) || [];
  const max = Math.max(1, ...pts.map(p => Math.max(p.rBps, p.oBps)));
  svg.appendChild(svgEl('line', { class: 'axis', x1: left, y1: h, x2: w, y2: h }));
  svg.appendChild(svgEl('line', { class: 'axis', x1: left, y1: 0, x2: left, y2: h }));
  const top = svgEl('text', { x: 2, y: 10 }); top.textContent = rate(max) + 'bit/s'; svg.appendChild(top);
  const zero = svgEl('text', { x: 2, y: h }); zero.textContent = '0'; svg.appendChild(zero);
  if (pts.length) {
    const span = svgEl('text', { x: left, y: h + 14 });
    span.textContent = `${pts.length} s, ending at ${pts[pts.length - 1].t.toFixed(0)} s; green received, blue sent, red drops`;
    svg.appendChild(span);
  }
  const g = svgEl('g', { transform: `translate(${left},0)` });
  g.appendChild(polyline(pts, p => p.rBps, w - left, h, max, 'rx'));
  g.appendChild(polyline(pts, p => p.oBps, w - left, h, max, 'tx'));
  const n = pts.length;
  pts.forEach((p, i) => {
    if (p.drops > 0) g.appendChild(svgEl('circle', { class: 'drop', cx: n < 2 ? 0 : i * (w - left) / (n - 1), cy: h - 3, r: 2 }));
  });
  svg.appendChild(g);
}

// ---- zones and flows ----

function drawZones(zones) {
  const body = $('#zones tbody');
  body.replaceChildren();
  for (const z of zones) {
    const tr = el('tr', { 'data-zone': z.name });
    for (const [cls, v] of [['name', z.name], ['alias', z.alias || '-'], ['brand', z.brand], ['state', z.state],
      ['memory', bytes(z.memoryUseBytes)], ['cap', z.memoryCapBytes == null ? 'none' : bytes(z.memoryCapBytes)],
      ['links', z.links.map(id => linkNames.get(id) || id).join(', ') || '-']])
      tr.appendChild(el('td', { class: cls }, String(v)));
    body.appendChild(tr);
  }
}

function drawFlows(flows) {
  const body = $('#flows tbody');
  body.replaceChildren();
  for (const f of flows) {
    const tr = el('tr', { 'data-flow': f.name });
    for (const [cls, v] of [['name', f.name], ['link', f.link], ['spec', f.attributes], ['maxbw', f.maxBwBps == null ? '--' : rate(f.maxBwBps)],
      ['priority', f.priority], ['rbytes', f.rBytes], ['obytes', f.oBytes], ['drops', f.iDrops + f.oDrops]])
      tr.appendChild(el('td', { class: cls }, String(v)));
    body.appendChild(tr);
  }
}

// ---- capture and console ----

async function capture() {
  const link = $('#capture-link').value, seconds = $('#capture-seconds').value;
  const status = $('#capture-status');
  status.className = '';
  status.textContent = `capturing ${link} for ${seconds} s`;
  const r = await fetch(`/api/capture?link=${encodeURIComponent(link)}&seconds=${encodeURIComponent(seconds)}`);
  if (!r.ok) {
    status.className = 'error';
    status.textContent = (await r.json().catch(() => ({ error: r.statusText }))).error;
    return;
  }
  const blob = await r.blob();
  const a = el('a', { href: URL.createObjectURL(blob), download: link + '.pcap' });
  document.body.appendChild(a);
  a.click();
  a.remove();
  status.textContent = `${link}.pcap: ${blob.size} bytes`;
}

async function runCommand(ev) {
  ev.preventDefault();
  const line = $('#console-input').value.trim();
  if (!line) return;
  const out = $('#console-output');
  out.appendChild(el('span', { class: 'cmd' }, '# ' + line + '\n'));
  try {
    const r = await api('command', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ line }) });
    out.appendChild(el('span', { class: 'out' }, r.stdout));
    if (r.stderr) out.appendChild(el('span', { class: 'err' }, r.stderr));
    out.appendChild(el('span', { class: 'exit', 'data-exit': r.exit }, `(exit ${r.exit})\n`));
  } catch (e) {
    out.appendChild(el('span', { class: 'err' }, e.message + '\n'));
  }
  out.scrollTop = out.scrollHeight;
}

// ---- live updates ----

function connect() {
  const events = new EventSource('/api/events');
  events.addEventListener('open', () => { $('#status').textContent = 'live'; $('#status').classList.add('live'); });
  events.addEventListener('error', () => { $('#status').textContent = 'reconnecting'; $('#status').classList.remove('live'); });
  events.addEventListener('topology', (m) => drawTopology(JSON.parse(m.data)));
  events.addEventListener('tick', (m) => {
    const t = JSON.parse(m.data);
    $('#clock').textContent = `t=${t.time.toFixed(0)} s`;
    $('#status').dataset.ticks = String(Number($('#status').dataset.ticks || 0) + 1);
    drawLinks(t.links);
    drawZones(t.zones);
    drawFlows(t.flows);
  });
}

async function start() {
  $('#capture-button').addEventListener('click', capture);
  $('#console-form').addEventListener('submit', runCommand);
  const [topo, links, zones, flows] = await Promise.all([api('topology'), api('links'), api('zones'), api('flows')]);
  drawTopology(topo);
  for (const l of links) linkNames.set(l.id, l.name);
  await Promise.all(links.map(async (l) => {
    try { for (const p of (await api('series/' + encodeURIComponent(l.name))).points) remember(l.name, p); } catch (e) { /* gone */ }
  }));
  drawLinks(links);
  drawZones(zones);
  drawFlows(flows);
  connect();
}

start();
