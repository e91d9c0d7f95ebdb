/* uPlot wrappers: one record per chart, its figure, options, drawing and resizing.
 *
 * A chart definition (def) names its series as {metric, field, key, value, label}: key and
 * value select one device/interface/mount/core (both null = the metric's totals), so one
 * chart may mix series of several devices (per-core) or metrics (space and inodes of a
 * mount). A chart's data is uPlot's columnar [xs, ys...].
 *
 * Charts are created lazily: a chart further down the page gets its uPlot instance (and
 * its history, see history.js) only when it comes near the viewport, so a host with many
 * disks or interfaces does not pay for charts nobody scrolled to.
 *
 * The x scale: the live window follows the newest snapshot; a zoom (zoom.js) overrides
 * every range, so zooming in Live stops following until the zoom is reset.
 */

import { DASH, fmtDateTime, fmtNumber, formatterFor, unitKind } from './format.js';
import { LIVE_WINDOW, state } from './state.js';

const PALETTE = ['#3b82f6', '#f59e0b', '#10b981', '#ef4444', '#a855f7', '#ec4899', '#14b8a6', '#84cc16'];

const charts = new Map(); // def.id -> chart record
let plugins = [];
let resizer = null;

// Binary steps (256 MiB, 512 MiB, 1 GiB, ...) so memory ticks read as round numbers.
const BINARY_INCRS = [];
for (let k = 0; k <= 5; k += 1) {
  for (const m of [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]) BINARY_INCRS.push(m * 1024 ** k);
}
// Whole bytes per second at least: an idle interface's axis reads 0, 1 B/s, not
// "0 B/s, 0 B/s, 1 B/s" from rounded quarter steps.
const DECIMAL_INCRS = [];
for (let k = 0; k <= 12; k += 1) for (const m of [1, 2, 5]) DECIMAL_INCRS.push(m * 10 ** k);

const TIME_FMT = {
  sec: new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' }),
  min: new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' }),
  dayMin: new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' }),
  day: new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' }),
};

export function setChartPlugins(list) { plugins = list; }
export function allCharts() { return [...charts.values()]; }
export function builtCharts() { return allCharts().filter((c) => c.u); }
export function chartById(id) { return charts.get(id); }

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

function seriesColor(def, i) {
  const n = def.series.length;
  if (!def.many || n <= PALETTE.length) return PALETTE[i % PALETTE.length];
  return `hsl(${Math.round((i * 360) / n)}, 65%, 55%)`;
}

// One short line per tick (uPlot's default adds a second date row that overlaps).
function timeTicks(u, splits, axisIdx, space, incr) {
  const span = u.scales.x.max - u.scales.x.min;
  let f = TIME_FMT.min;
  if (incr < 60) f = TIME_FMT.sec;
  else if (incr >= 86400) f = TIME_FMT.day;
  else if (span > 86400) f = TIME_FMT.dayMin;
  return splits.map((v) => f.format(new Date(v * 1000)));
}

// Without a hover the legend would show dashes; show the newest values instead. Runs as
// the setLegend hook (after uPlot cleared the legend) and sets it without re-firing.
// uPlot re-reads the legend at its previous index after setData, so the index must be
// recomputed every time. When zoomed, "newest" is the newest point in view.
function showLatestInLegend(u) {
  if (u.cursor.left !== undefined && u.cursor.left >= 0) return; // hovering (or synced)
  const xs = u.data[0];
  if (!xs || !xs.length) return;
  let idx = xs.length - 1;
  const max = u.scales.x.max;
  while (idx > 0 && max !== undefined && max !== null && xs[idx] > max) idx -= 1;
  while (idx > 0 && u.data.slice(1).every((s) => s[idx] === null || s[idx] === undefined)) idx -= 1;
  u.setLegend({ idx }, false);
}

// The x range every chart shows: the zoom if there is one, else the live window that
// follows the newest snapshot, else what the data spans.
export function xRange(u, min, max) {
  if (state.zoom) return [state.zoom.min, state.zoom.max];
  if (state.range === 'live' && state.lastTs) return [state.lastTs - LIVE_WINDOW, state.lastTs];
  return [min, max];
}

function yRange(def) {
  if (def.yRange === 'pct100') return [0, 100];
  return (u, min, max) => {
    const lo = min !== null && min < 0 ? min * 1.1 : 0;
    const hi = max !== null && max > 0 ? max * 1.1 : 1;
    return [lo, def.yRange === 'pctAuto' ? Math.min(100, hi) : hi];
  };
}

function chartOptions(def, width) {
  const fmt = formatterFor(def.unit);
  const kind = unitKind(def.unit);
  const axisColor = cssVar('--muted');
  const gridColor = cssVar('--grid');
  const series = [{ value: (u, v) => (v === null ? DASH : fmtDateTime(v)) }];
  def.series.forEach((s, i) => {
    const color = seriesColor(def, i);
    const lead = i === 0 && !def.many;
    series.push({
      label: s.label,
      stroke: color,
      width: lead ? 2 : 1.25,
      fill: lead ? `${color}22` : undefined,
      value: (u, v) => (v === null || v === undefined ? DASH : fmt(v)),
      points: { show: false },
    });
  });
  const yAxis = {
    stroke: axisColor,
    grid: { stroke: gridColor, width: 1 },
    ticks: { stroke: gridColor, width: 1 },
    size: kind === 'pct' || kind === 'plain' ? 52 : 74,
    // Plain units (ops/s, packets/s) would crowd the axis: numbers there, units in the legend.
    values: (u, splits) => splits.map((v) => (kind === 'pct' ? `${v}%` : kind === 'plain' ? fmtNumber(v) : fmt(v))),
  };
  if (kind === 'bytes') yAxis.incrs = BINARY_INCRS;
  if (kind === 'rate') yAxis.incrs = DECIMAL_INCRS;
  return {
    width,
    height: window.matchMedia('(max-width: 600px)').matches ? 170 : 210,
    series,
    cursor: { sync: { key: 'sysmon' }, points: { size: 6 } },
    legend: { live: true },
    scales: { x: { time: true, range: xRange }, y: { range: yRange(def) } },
    axes: [
      {
        stroke: axisColor,
        grid: { stroke: gridColor, width: 1 },
        ticks: { stroke: gridColor, width: 1 },
        space: 70,
        values: timeTicks,
      },
      yAxis,
    ],
    hooks: { setLegend: [showLatestInLegend] },
    plugins,
  };
}

export function emptyData(def) {
  return [[], ...def.series.map(() => [])];
}

/* A figure for a chart made at run time (sections); the fixed ones are in index.html. */
export function createFigure(def) {
  const fig = document.createElement('figure');
  fig.className = 'chart';
  fig.id = `chart-${def.id}`;
  fig.dataset.points = '0';
  const cap = document.createElement('figcaption');
  const title = document.createElement('span');
  title.className = 'title';
  title.textContent = def.title;
  if (def.hint) title.title = def.hint;
  cap.appendChild(title);
  const plot = document.createElement('div'); plot.className = 'plot';
  const empty = document.createElement('p'); empty.className = 'empty'; empty.hidden = true;
  empty.textContent = 'No data in this range yet';
  fig.append(cap, plot, empty);
  return fig;
}

// The CSV link every chart carries (export.js fills it in on click).
function addCsvLink(c) {
  const cap = c.fig.querySelector('figcaption');
  if (cap.querySelector('a.csv')) return;
  if (!cap.querySelector('.title')) {
    const title = document.createElement('span');
    title.className = 'title';
    title.append(...cap.childNodes);
    cap.appendChild(title);
  }
  const a = document.createElement('a');
  a.className = 'csv';
  a.href = '#';
  a.textContent = 'CSV';
  a.dataset.chart = c.def.id;
  a.title = `Download the visible range of "${c.def.title}" as CSV`;
  a.setAttribute('aria-label', `Download ${c.def.title} as CSV`);
  cap.appendChild(a);
}

export function plotWidth(c) {
  return Math.max(c.fig.querySelector('.plot').clientWidth, 200);
}

export function registerChart(def, fig) {
  const c = {
    def, fig, u: null, data: emptyData(def), dirty: false, gen: -1, loading: false, offScreen: false,
  };
  charts.set(def.id, c);
  addCsvLink(c);
  return c;
}

export function removeChart(c) {
  if (c.u) c.u.destroy();
  if (resizer) resizer.unobserve(c.fig.querySelector('.plot'));
  if (screenObserver) screenObserver.unobserve(c.fig);
  charts.delete(c.def.id);
  c.fig.remove();
}

/* measured: the plot's width when the caller measured several plots at once (reading
 * clientWidth after another chart was built forces a layout of the page each time). */
export function buildChart(c, measured = null) {
  const plot = c.fig.querySelector('.plot');
  if (c.u) c.u.destroy();
  plot.replaceChildren();
  const width = measured === null ? Math.max(plot.clientWidth, 200) : measured;
  c.u = new uPlot(chartOptions(c.def, width), c.data, plot);
  observeResize(plot);
  return c;
}

// A chart whose series changed (the list of cores became known): new def, same figure.
export function redefineChart(c, def) {
  c.def = def;
  c.data = emptyData(def);
  c.gen = -1;
  if (c.u) buildChart(c);
}

function observeResize(plot) {
  if (!resizer) {
    resizer = new ResizeObserver(() => {
      for (const x of builtCharts()) {
        const w = Math.max(x.fig.querySelector('.plot').clientWidth, 200);
        if (Math.abs(w - x.u.width) > 1) x.u.setSize({ width: w, height: x.u.height });
      }
    });
    // Colours come from CSS variables, which change with the OS theme.
    window.matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => {
      for (const x of builtCharts()) buildChart(x);
    });
  }
  resizer.observe(plot);
}

function countPoints(data) {
  let n = 0;
  for (let s = 1; s < data.length; s += 1) for (const v of data[s]) if (v !== null && v !== undefined) n += 1;
  return n;
}

export function drawChart(c) {
  const points = countPoints(c.data);
  c.fig.dataset.points = String(points);
  c.fig.querySelector('.empty').hidden = points > 0 || c.gen < 0;
  if (!c.u) return;
  if (document.hidden || c.offScreen) { c.dirty = true; return; }
  c.dirty = false;
  c.u.setData(c.data);
  if (points > 0 && !state.firstChartMarked) {
    state.firstChartMarked = true;
    performance.mark('sysmon:first-chart');
  }
}

/* Section charts are many: one scrolled out of view keeps its data up to date but is
 * drawn again only when it is back on screen (a redraw per chart per second adds up). */
let screenObserver = null;
export function drawOnlyOnScreen(c) {
  if (!screenObserver) {
    screenObserver = new IntersectionObserver((entries) => {
      for (const e of entries) {
        const chart = e.target.sysmonChart;
        if (!chart) continue;
        chart.offScreen = !e.isIntersecting;
        if (!chart.offScreen && chart.dirty && !document.hidden) drawChart(chart);
      }
    });
  }
  c.fig.sysmonChart = c;
  screenObserver.observe(c.fig);
}

export function redrawDirty() {
  for (const c of builtCharts()) if (c.dirty && !c.offScreen) drawChart(c);
}

/* Apply the shared x range (zoom, live edge or data extent) to one chart now. */
export function refreshX(c) {
  if (!c.u) return;
  const xs = c.data[0];
  if (!xs.length && !state.zoom) return;
  const [min, max] = xRange(c.u, xs[0], xs[xs.length - 1]);
  if (min === null || max === null || min === undefined || !(max > min)) return;
  c.u.setScale('x', { min, max });
}
