/* Zoom and pan, shared by every chart (their cursors are synced, so their x ranges are
 * too). Works the same in every range, Live included:
 *
 *   drag                  zoom to the dragged span
 *   shift+drag, or a      pan the zoomed span (from the whole range if not zoomed)
 *   horizontal / shift+wheel
 *   double-click, Esc,    back to the whole range
 *   "Reset zoom"
 *
 * In Live, a zoom freezes the x range, so the charts stop following the newest snapshot
 * (new points still arrive, off to the right); the bar above the charts says so until
 * the zoom is reset. A zoom is dropped when the range changes.
 */

import { builtCharts, refreshX } from './charts.js';
import { fmtClock, fmtDateTime } from './format.js';
import { $, state } from './state.js';

const MIN_SPAN_SECONDS = 2;
let selecting = false;
let panFrame = 0;
let panTarget = null;

function fmtSpan(seconds) {
  if (seconds < 120) return `${Math.round(seconds)} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172800) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86400).toFixed(1)} d`;
}

function showState() {
  const bar = $('#zoom');
  const z = state.zoom;
  document.documentElement.dataset.zoomed = z ? 'yes' : 'no';
  bar.hidden = !z;
  if (!z) return;
  const live = state.range === 'live';
  const oneDay = new Date(z.min * 1000).toDateString() === new Date(z.max * 1000).toDateString();
  const fmt = oneDay && live ? fmtClock : fmtDateTime;
  $('#zoom-text').textContent = `Zoomed: ${fmt(z.min)} \u2013 ${fmt(z.max)} (${fmtSpan(z.max - z.min)})`
    + (live ? ' \u00b7 Live view paused' : '');
  bar.title = live ? 'The charts no longer follow new data until the zoom is reset.' : '';
  bar.dataset.live = live ? 'paused' : '';
}

/* Set (or with null, drop) the zoom of every chart. */
export function applyZoom(z) {
  if (z && !(z.max - z.min >= MIN_SPAN_SECONDS)) return;
  state.zoom = z ? { min: z.min, max: z.max } : null;
  for (const c of builtCharts()) {
    c.u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
    refreshX(c);
  }
  showState();
}

export function resetZoom() {
  if (state.zoom) applyZoom(null);
}

// The drag selection of one chart; synced charts report the same selection right after
// (uPlot replays the mouse-up on them), so only the first report of a gesture counts.
function onSelect(u) {
  const sel = u.select;
  if (selecting || !sel || sel.width < 3) return;
  selecting = true;
  const min = u.posToVal(sel.left, 'x');
  const max = u.posToVal(sel.left + sel.width, 'x');
  queueMicrotask(() => {
    selecting = false;
    applyZoom({ min, max });
  });
}

function panBy(u, seconds) {
  const base = state.zoom || { min: u.scales.x.min, max: u.scales.x.max };
  if (base.min === null || base.max === null || base.min === undefined) return;
  panTarget = { min: base.min + seconds, max: base.max + seconds };
  if (!panFrame) {
    panFrame = requestAnimationFrame(() => {
      panFrame = 0;
      if (panTarget) applyZoom(panTarget);
      panTarget = null;
    });
  }
}

function secondsPerPixel(u) {
  const span = u.scales.x.max - u.scales.x.min;
  return span / Math.max(1, u.over.clientWidth);
}

function attach(u) {
  const over = u.over;
  // Shift+drag pans. Caught in the capture phase on the chart's root, before uPlot's own
  // mousedown on the overlay starts a selection.
  u.root.addEventListener('mousedown', (e) => {
    if (!e.shiftKey || e.button !== 0 || !over.contains(e.target)) return;
    e.stopPropagation();
    e.preventDefault();
    let lastX = e.clientX;
    const spp = secondsPerPixel(u);
    over.classList.add('panning');
    const move = (ev) => {
      const dx = ev.clientX - lastX;
      lastX = ev.clientX;
      if (dx) panBy(u, -dx * spp);
    };
    const up = () => {
      over.classList.remove('panning');
      window.removeEventListener('mousemove', move);
      window.removeEventListener('mouseup', up);
    };
    window.addEventListener('mousemove', move);
    window.addEventListener('mouseup', up);
  }, true);
  // A horizontal wheel (touchpad swipe) or shift+wheel pans; a plain wheel scrolls the page.
  over.addEventListener('wheel', (e) => {
    const dx = Math.abs(e.deltaX) > Math.abs(e.deltaY) ? e.deltaX : e.shiftKey ? e.deltaY : 0;
    if (!dx) return;
    e.preventDefault();
    const px = e.deltaMode === 1 ? dx * 16 : dx;
    panBy(u, px * secondsPerPixel(u));
  }, { passive: false });
  over.addEventListener('dblclick', () => resetZoom());
}

function reflect(u) {
  const fig = u.root.closest('figure');
  if (!fig) return;
  fig.dataset.xMin = String(u.scales.x.min);
  fig.dataset.xMax = String(u.scales.x.max);
}

/* The uPlot plugin every chart gets: our drag handling instead of uPlot's own zoom. */
export function zoomPlugin() {
  return {
    opts: (u, opts) => {
      opts.cursor = {
        ...opts.cursor,
        drag: { x: true, y: false, setScale: false, dist: 4 },
        // uPlot's double-click would rescale this one chart; ours resets all of them.
        bind: { dblclick: () => null },
      };
      return opts;
    },
    hooks: {
      init: [attach],
      setSelect: [onSelect],
      setScale: [(u, key) => { if (key === 'x') reflect(u); }],
    },
  };
}

export function initZoom() {
  $('#zoom-reset').addEventListener('click', resetZoom);
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && state.zoom) resetZoom();
  });
  showState();
}
