/* sysmon dashboard, entry module: plain ES modules from our own origin, no build step.
 * uPlot is the vendor file loaded as a classic script before this (window.uPlot).
 *
 *   api.js       fetch, CSRF-protected writes, the live stream and its reconnects
 *   state.js     the shared state (range, clock offset, zoom, recent snapshots)
 *   format.js    units and numbers for people
 *   cards.js     header and "current values" cards
 *   processes.js the top-process table
 *   alerts.js    the alerts panel
 *   account.js   who is signed in, sign out
 *   charts.js    uPlot wrappers: figures, options, drawing, resizing
 *   history.js   history per range, live appends
 *   zoom.js      zoom and pan shared by every chart
 *   export.js    CSV of a chart's visible range
 *   sections.js  per-device sections from the metric catalog
 *   hosts.js     the host picker (a store shared by several agents): whose history
 *
 * Data flow: one EventSource pushes a snapshot per collection tick. Each snapshot updates
 * the cards and the process table, and in Live appends one point to every loaded chart.
 * History for a range comes from /api/v1/metrics/{name}?resolution=auto. After a
 * reconnect the page reloads what a server restart may have changed (system info, the
 * sections, the live window, alerts).
 */

import { API, LiveStream, getJSON } from './api.js';
import { renderCards, renderHeader, renderSystem } from './cards.js';
import {
  buildChart, chartById, plotWidth, redefineChart, redrawDirty, registerChart, setChartPlugins,
} from './charts.js';
import { initExport } from './export.js';
import { isNum } from './format.js';
import { appendSnapshot, ensureLoaded, loadHistory } from './history.js';
import { historyHost, initHosts, loadHosts, updateHostNote } from './hosts.js';
import { initProcesses, updateProcesses } from './processes.js';
import { $, RANGES, rememberSnapshot, state } from './state.js';
import { applyZoom, initZoom, zoomPlugin } from './zoom.js';

const ALERTS_REFRESH_MS = 30000;
const HISTORY_REFRESH_MS = 60000;
const HOSTS_REFRESH_MS = 30000; // up/down marks of the host picker

// Not needed for the first chart, so not on its critical path: every extra file a cold
// load must fetch before this module runs costs a round trip to a busy server.
let accountP = null;
let alertsP = null;
const account = () => { accountP = accountP || import('./account.js'); return accountP; };
const alerts = () => { alertsP = alertsP || import('./alerts.js'); return alertsP; };
const loadMe = () => account().then((m) => m.loadMe());
const loadAlerts = () => alerts().then((m) => m.loadAlerts());

const s = (metric, field, label, key = null, value = null) => ({ metric, field, label, key, value });

// The charts in index.html's History panel, in page order.
function mainDefs() {
  return [
    { id: 'cpu', title: 'CPU', unit: '%', yRange: 'pct100', series: [
      s('cpu', 'percent', 'total'), s('cpu', 'user_percent', 'user'),
      s('cpu', 'system_percent', 'system'), s('cpu', 'iowait_percent', 'iowait')] },
    coresDef(),
    { id: 'memory', title: 'Memory', unit: 'bytes', yRange: 'auto', series: [
      s('memory', 'used_bytes', 'used'), s('memory', 'cached_bytes', 'cached'),
      s('memory', 'swap_used_bytes', 'swap used')] },
    { id: 'load', title: 'Load average', unit: '', yRange: 'auto', series: [
      s('cpu', 'load_1', '1 min'), s('cpu', 'load_5', '5 min'), s('cpu', 'load_15', '15 min')] },
    { id: 'diskio', title: 'Disk I/O', unit: 'bytes/s', yRange: 'auto', series: [
      s('disk', 'read_bytes_per_sec', 'read'), s('disk', 'write_bytes_per_sec', 'write')] },
    { id: 'network', title: 'Network', unit: 'bytes/s', yRange: 'auto', series: [
      s('network', 'bytes_recv_per_sec', 'in'), s('network', 'bytes_sent_per_sec', 'out')] },
  ];
}

function coresDef() {
  return {
    id: 'cores', title: 'CPU per core', unit: '%', yRange: 'pct100', many: true,
    series: state.cores.map((c) => s('cpu', 'percent', `core ${c}`, 'core', c)),
  };
}

let stream = null;

function setConn(kind) {
  const badge = $('#conn');
  badge.dataset.state = kind;
  const text = { live: 'live', reconnecting: 'reconnecting\u2026', paused: 'paused' };
  badge.textContent = text[kind] || 'connecting\u2026';
  badge.title = kind === 'live' ? 'Receiving live updates' : 'Waiting for the server; the page reconnects by itself';
}

function render(snap) {
  renderHeader(snap);
  renderCards(snap);
  updateProcesses(snap);
}

function onSnapshot(snap) {
  if (!snap || !isNum(snap.timestamp)) return;
  state.serverOffset = snap.timestamp - Date.now() / 1000;
  if (state.latest && snap.timestamp > state.latest.timestamp) {
    state.interval = Math.max(1, Math.min(60, Math.round(snap.timestamp - state.latest.timestamp))) || state.interval;
    if (stream) stream.interval = state.interval;
  }
  state.latest = snap;
  rememberSnapshot(snap);
  if (state.range === 'live') {
    state.lastTs = Math.max(state.lastTs, snap.timestamp);
    appendSnapshot(snap);
  }
  if (document.hidden) return; // rendered on visibilitychange
  render(snap);
}

// A chart of a section came near the viewport: build it and fetch its history.
function showChart(c) {
  if (typeof uPlot === 'undefined') return;
  c.active = true;
  buildChart(c);
  ensureLoaded(c);
}

async function refreshSections() {
  const { loadCatalog, plan, renderSections } = await import('./sections.js');
  const catalog = await loadCatalog();
  let current = state.latest || (await getJSON(`${API}/metrics/current`).catch(() => null));
  // Another host's history: plan its sections from its own devices, not this server's.
  const host = historyHost();
  if (host) {
    const url = `${API}/hosts/${encodeURIComponent(host)}/series`;
    current = (await getJSON(url).catch(() => null)) || current;
  }
  const sections = plan(catalog, current);
  renderSections(sections, showChart);
  const nav = $('#jump');
  nav.replaceChildren();
  for (const sec of sections) {
    const a = document.createElement('a');
    a.href = `#sec-${sec.id}`;
    a.textContent = sec.title;
    nav.appendChild(a);
  }
  const procs = document.createElement('a');
  procs.href = '#procs-panel';
  procs.textContent = 'Processes';
  nav.appendChild(procs);
}

function setRange(range) {
  if (!(range in RANGES)) return;
  state.range = range;
  for (const btn of document.querySelectorAll('.ranges button')) {
    btn.setAttribute('aria-pressed', String(btn.dataset.range === range));
  }
  applyZoom(null);
  updateHostNote();
  // Live <-> a range can change whose devices show: re-plan the sections first, so no
  // chart of the other host's devices asks for history.
  if (state.hosts) refreshSections().finally(loadHistory);
  else loadHistory();
}

// Another host picked (hosts.js explains the choices). In Live the charts follow this
// server's stream, which cannot show another host: go to the last hour of that host
// rather than leave the charts unchanged under its name. Otherwise reload the range
// (the zoom stays: the same stretch of time on another host).
function onHostChange(host) {
  if (host && state.range === 'live') { setRange('1h'); return; }
  updateHostNote();
  refreshSections().finally(() => { if (state.range !== 'live') loadHistory(); });
}

async function loadSystem() {
  try {
    const sys = await getJSON(`${API}/system`);
    state.system = sys;
    state.thresholds = sys.thresholds || {};
    // Until /api/v1/hosts names the default host (hosts.js), which wins: this is the
    // machine's name, not agent.host.
    if (!state.hosts) state.localHost = typeof sys.hostname === 'string' ? sys.hostname : '';
    renderSystem(sys);
    return sys;
  } catch (err) {
    return null;
  }
}

function coresFrom(sys, snap) {
  const fromSnap = snap && snap.metrics && snap.metrics.cpu && snap.metrics.cpu.core;
  if (fromSnap && Object.keys(fromSnap).length) {
    return Object.keys(fromSnap).sort((a, b) => Number(a) - Number(b));
  }
  const n = sys && isNum(sys.cpu_count) ? sys.cpu_count : 0;
  return Array.from({ length: n }, (_, i) => String(i));
}

// First snapshot on a reopened stream: the server may have restarted.
function onReconnected() {
  loadSystem();
  loadMe();
  alerts().then((m) => { m.resetAlerts(); m.loadAlerts(); });
  refreshSections();
  loadHosts();
  if (state.range === 'live') loadHistory();
}

async function init() {
  performance.mark('sysmon:init');
  const charting = typeof uPlot !== 'undefined';
  if (!charting) {
    const notice = $('#notice');
    notice.textContent = 'Chart library missing: run `npm ci` in the sysmon directory.';
    notice.dataset.kind = 'sticky';
    notice.hidden = false;
  }
  setChartPlugins([zoomPlugin()]);
  initZoom();
  initExport();
  initProcesses();
  initHosts(onHostChange);
  account().then((m) => m.initAccount());
  for (const btn of document.querySelectorAll('.ranges button')) {
    btn.addEventListener('click', () => setRange(btn.dataset.range));
  }
  document.addEventListener('visibilitychange', () => {
    if (document.hidden) return;
    redrawDirty();
    if (state.latest) render(state.latest);
  });

  loadMe();
  stream = new LiveStream({
    snapshot: onSnapshot,
    alert: () => alerts().then((m) => { if (m.alertsAvailable()) m.loadAlerts(); }),
    state: setConn,
    reconnected: onReconnected,
  });
  stream.connect();
  const sysP = loadSystem();
  const currentP = getJSON(`${API}/metrics/current`).catch(() => null);

  // The History panel's charts exist from the start: ask for their history first, then
  // build them while the requests run. Per-core waits for the list of cores.
  for (const def of mainDefs()) {
    const c = registerChart(def, document.getElementById(`chart-${def.id}`));
    c.active = charting && def.series.length > 0;
  }
  let history = Promise.resolve();
  if (charting) {
    history = loadHistory();
    const first = mainDefs().filter((def) => def.series.length).map((def) => chartById(def.id));
    const widths = first.map(plotWidth); // one layout for all of them
    first.forEach((c, i) => buildChart(c, widths[i]));
  }
  const [sys, current] = await Promise.all([sysP, currentP]);
  if (current && !state.latest) onSnapshot(current);
  state.cores = coresFrom(sys, state.latest || current);
  if (sys) renderSystem(sys);
  loadHosts(); // after /system: the picker marks this server's own host
  if (charting) {
    const cores = chartById('cores');
    redefineChart(cores, coresDef());
    cores.active = true;
    buildChart(cores);
    ensureLoaded(cores);
  }
  // Sections after the History panel's answers: their requests would otherwise compete
  // with it for the browser's few connections (and delay the first chart).
  await history;
  await refreshSections();
  loadAlerts();
  window.setInterval(() => {
    if (document.hidden || !stream.connected) return;
    alerts().then((m) => { if (m.alertsAvailable()) m.loadAlerts(); });
  }, ALERTS_REFRESH_MS);
  window.setInterval(() => {
    if (!document.hidden && stream.connected) loadHosts();
  }, HOSTS_REFRESH_MS);
  // Fixed ranges are not fed by the stream; refresh them gently while visible.
  window.setInterval(() => {
    if (!document.hidden && state.range !== 'live' && stream.connected) loadHistory();
  }, HISTORY_REFRESH_MS);
}

init();
