/* Filling charts with data: history from /api/v1/metrics/{metric}?...&resolution=auto
 * for the chosen range, and in Live one point per pushed snapshot (no refetching).
 *
 * Requests are per series group (a metric's totals, or one device/mount/interface/core),
 * and one answer feeds every chart that shows fields of that group (a disk's throughput,
 * IOPS and busy charts share one request). Each chart is drawn as soon as its own groups
 * answered. Snapshots pushed while a chart's request ran are replayed from state.recent
 * once it is drawn, so Live has no holes.
 */

import { API, getJSON, mapLimit } from './api.js';
import { allCharts, drawChart, emptyData, refreshX } from './charts.js';
import { isNum, num } from './format.js';
import { historyHost } from './hosts.js';
import { $, LIVE_WINDOW, RANGES, nowServer, state } from './state.js';

// One window per history generation, so charts activated later in a fixed range ask for
// the same start/end as the others (and hit the server's range cache).
let windowOf = { gen: -1, start: 0, end: 0 };

export function groupKey(s) {
  return s.key ? `${s.metric}|${s.key}=${s.value}` : `${s.metric}|`;
}

function groupsOf(def) {
  const seen = new Map();
  for (const s of def.series) {
    const k = groupKey(s);
    if (!seen.has(k)) seen.set(k, { key: k, metric: s.metric, sel: s.key ? [s.key, s.value] : null });
  }
  return [...seen.values()];
}

function currentWindow() {
  if (windowOf.gen !== state.historyGen || state.range === 'live') {
    const end = nowServer();
    windowOf = { gen: state.historyGen, start: end - RANGES[state.range], end };
  }
  return windowOf;
}

function fetchGroup(g, win) {
  let q = `start=${win.start.toFixed(3)}&end=${win.end.toFixed(3)}&resolution=auto`;
  if (g.sel) q += `&${g.sel[0]}=${encodeURIComponent(g.sel[1])}`;
  // Another host's history (hosts.js); a device that host lacks answers 422 and its
  // chart stays empty.
  const host = historyHost();
  if (host) q += `&host=${encodeURIComponent(host)}`;
  return getJSON(`${API}/metrics/${encodeURIComponent(g.metric)}?${q}`);
}

function column(resp, field) {
  const fields = (resp && resp.fields) || {};
  const n = (resp && resp.timestamps && resp.timestamps.length) || 0;
  return Array.isArray(fields[field]) ? fields[field].map(num) : new Array(n).fill(null);
}

// The chart's columns from its groups' answers (null = that request failed), joined on
// time when the series come from several groups.
function dataFor(def, answers) {
  const groups = groupsOf(def);
  const tables = [];
  const order = []; // series index of each joined column
  for (const g of groups) {
    const resp = answers.get(g.key);
    const idx = [];
    def.series.forEach((s, i) => { if (groupKey(s) === g.key) idx.push(i); });
    if (!resp || !resp.timestamps) continue;
    tables.push([Array.from(resp.timestamps), ...idx.map((i) => column(resp, def.series[i].field))]);
    order.push(...idx);
  }
  if (!tables.length) return emptyData(def);
  const joined = tables.length === 1 ? tables[0]
    : uPlot.join(tables).map((arr) => Array.from(arr, (v) => (v === undefined ? null : v)));
  const data = [joined[0], ...def.series.map(() => null)];
  order.forEach((si, col) => { data[si + 1] = joined[col + 1]; });
  for (let i = 1; i < data.length; i += 1) if (!data[i]) data[i] = new Array(joined[0].length).fill(null);
  return data;
}

function showResolution(resp) {
  const res = $('#resolution');
  if (!resp) { res.textContent = 'history unavailable'; res.dataset.resolution = ''; return; }
  const st = resp.step_seconds;
  const step = isNum(st) ? ` (${st >= 60 ? `${Math.round(st / 60)} min` : `${st} s`})` : '';
  res.textContent = `resolution ${resp.resolution || '?'}${step} \u00b7 ${resp.agg || 'mean'}`;
  res.dataset.resolution = resp.resolution || '';
}

function apply(c, data, gen) {
  c.data = data;
  c.gen = gen;
  c.loading = false;
  c.fig.removeAttribute('aria-busy');
  if (state.range === 'live') {
    const xs = data[0];
    if (xs.length) state.lastTs = Math.max(state.lastTs, xs[xs.length - 1]);
    for (const snap of state.recent) appendTo(c, snap, false);
  }
  drawChart(c);
  refreshX(c);
}

/* Load the given charts for the current range; answers of an older range are dropped. */
async function load(list) {
  if (!list.length) return;
  const gen = state.historyGen;
  const win = currentWindow();
  const groups = new Map();
  for (const c of list) {
    c.loading = true;
    c.fig.setAttribute('aria-busy', 'true');
    for (const g of groupsOf(c.def)) groups.set(g.key, g);
  }
  const answers = new Map();
  const waiting = new Map(list.map((c) => [c, groupsOf(c.def).map((g) => g.key)]));
  const settle = (key, resp) => {
    answers.set(key, resp);
    if (gen !== state.historyGen) return;
    if (key === 'cpu|') showResolution(resp);
    for (const [c, keys] of waiting) {
      if (keys.every((k) => answers.has(k))) {
        waiting.delete(c);
        apply(c, dataFor(c.def, answers), gen);
      }
    }
  };
  // Totals first: they feed the charts at the top of the page.
  const ordered = [...groups.values()].sort((a, b) => (a.sel ? 1 : 0) - (b.sel ? 1 : 0));
  await mapLimit(ordered, 5, async (g) => {
    let resp = null;
    try { resp = await fetchGroup(g, win); } catch (err) { resp = null; }
    settle(g.key, resp);
  });
}

/* A new range, a reconnect or the periodic refresh of a fixed range: reload every chart
 * that has been shown; the others load when they are first shown (ensureLoaded). */
export function loadHistory() {
  state.historyGen += 1;
  return load(allCharts().filter((c) => c.active));
}

export function ensureLoaded(c) {
  if (c.gen === state.historyGen || c.loading) return Promise.resolve();
  return load([c]);
}

function snapshotValue(m, s) {
  const metric = m[s.metric];
  if (!metric) return null;
  const row = s.key ? metric[s.key] && metric[s.key][s.value] : metric.total;
  return row ? num(row[s.field]) : null;
}

function appendTo(c, snap, draw = true) {
  const ts = snap.timestamp;
  const d = c.data;
  const last = d[0].length ? d[0][d[0].length - 1] : null;
  if (last !== null && ts <= last) return;
  const m = snap.metrics || {};
  // A missed stretch (server down, tab asleep) becomes a gap rather than a straight line.
  if (last !== null && ts - last > Math.max(5 * state.interval, 5)) {
    d[0].push(last + state.interval);
    for (let s = 1; s < d.length; s += 1) d[s].push(null);
  }
  d[0].push(ts);
  c.def.series.forEach((s, i) => d[i + 1].push(snapshotValue(m, s)));
  // Keep the live window; while zoomed, also keep what the zoom shows.
  const keepFrom = Math.min(ts - LIVE_WINDOW, state.zoom ? state.zoom.min : Infinity);
  let drop = 0;
  while (drop < d[0].length && d[0][drop] < keepFrom) drop += 1;
  if (drop) for (const arr of d) arr.splice(0, drop);
  if (draw) drawChart(c);
}

/* Live: one pushed snapshot becomes one point on every loaded chart. */
export function appendSnapshot(snap) {
  for (const c of allCharts()) {
    if (c.loading || c.gen !== state.historyGen) continue;
    appendTo(c, snap, Boolean(c.u));
  }
}
