/* The host picker: whose history the charts show, when the store holds several hosts
 * (agents sharing a VictoriaMetrics or InfluxDB store).
 *
 * GET /api/v1/hosts lists them ({hosts: [{name, last_seen, up, age_seconds}],
 * down_after_seconds, default_host}); default_host is the one a request without host=
 * reads (this server's agent.host), else /api/v1/system's hostname is taken for it. With one host (every SQLite install) or when the request fails,
 * the picker stays hidden and no request carries host=: the page is exactly the
 * single-host page. With several, the <select> in the toolbar lists them; a host that
 * stopped reporting reads "beta (down 2 min)", and its charts show the gaps the API
 * answers after its last point (nulls, drawn as gaps).
 *
 * Only history is per host. Live data (/metrics/current, the stream: the cards, the
 * process table and the Live charts) is always the tick of the agent this server
 * follows; the API has no live data of another host. So:
 * - state.host is null for this server's own host (no host= at all, the server's
 *   default), else the picked name;
 * - a fixed range (1 h ... 1 y) asks every history request with host=<picked>;
 * - Live keeps showing this server's agent whatever is picked, and a visible note says
 *   so ("live data is this server's agent; pick a range for beta's history"). Picking
 *   another host while in Live switches to 1 h (app.js): picking a host is asking to
 *   see that host, and a picker that changed nothing on screen would look broken, while
 *   charts fed by the stream under another host's name would be wrong. Pressing Live
 *   again afterwards is an explicit choice of live data, which the note explains.
 * The header's host name stays this server's host: it labels the cards.
 */

import { API, getJSON } from './api.js';
import { $, state } from './state.js';

let onChange = () => {};

// "45 s", "2 min", "3 h", "2 d": how long a host has been silent, for people.
export function agoText(seconds) {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds)) return '';
  if (seconds < 60) return `${Math.round(seconds)} s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86400)} d`;
}

function optionText(h) {
  const notes = [];
  if (h.name === state.localHost) notes.push('this server');
  if (h.up === false) {
    const ago = agoText(h.age_seconds);
    notes.push(ago ? `down ${ago}` : 'down');
  }
  return notes.length ? `${h.name} (${notes.join(', ')})` : h.name;
}

/* The host= of history requests: none in Live (the stream is this server's agent). */
export function historyHost() {
  return state.range === 'live' ? null : state.host;
}

/* The name of the host the charts show, for file names; null on a single-host page. */
export function shownHost() {
  if (!state.hosts) return null;
  return historyHost() || state.localHost || null;
}

/* The visible note whenever the page shows two hosts at once (cards and processes are
 * always this server's) or Live cannot show the picked one. */
export function updateHostNote() {
  const note = $('#host-note');
  if (!note) return;
  const here = state.localHost ? ` (${state.localHost})` : '';
  let text = '';
  if (state.hosts && state.host) {
    text = state.range === 'live'
      ? `Live data is this server's agent${here}; pick a range for ${state.host}'s history.`
      : `Charts: ${state.host}'s history. Current values and processes are this server's${here}.`;
  }
  note.textContent = text;
  note.hidden = !text;
  note.dataset.host = state.host || '';
}

function fill(list) {
  const sel = $('#host-picker');
  const names = list.map((h) => h.name);
  const entries = list.slice();
  // The server's default host (no host=) is normally in the list under its agent.host;
  // when it is not (live_host follows another agent), offer it as "this server".
  if (!names.includes(state.localHost)) entries.unshift({ name: '', up: true, label: 'this server' });
  const want = state.host || (names.includes(state.localHost) ? state.localHost : '');
  const opts = entries.map((h) => {
    const o = document.createElement('option');
    o.value = h.name;
    o.textContent = h.label || optionText(h);
    o.dataset.up = String(h.up !== false);
    return o;
  });
  sel.replaceChildren(...opts);
  sel.value = want;
  const picked = entries.find((h) => h.name === want);
  sel.dataset.up = String(!picked || picked.up !== false);
}

/* Ask the server for its hosts and show (or hide) the picker. Called at start, every
 * half minute and after a reconnect; a failure keeps what is shown. */
export async function loadHosts() {
  let list = null;
  let body = null;
  try {
    body = await getJSON(`${API}/hosts`);
    list = Array.isArray(body && body.hosts) ? body.hosts.filter((h) => h && typeof h.name === 'string' && h.name) : null;
  } catch (err) {
    return; // an older server or a hiccup: nothing changes
  }
  if (!list) return;
  if (typeof body.default_host === 'string' && body.default_host) state.localHost = body.default_host;
  const wrap = $('#hosts');
  if (list.length < 2) {
    // One host now: the single-host page, back to the server's default if needed.
    const had = state.host;
    state.hosts = null;
    state.host = null;
    wrap.hidden = true;
    updateHostNote();
    if (had) onChange(null);
    return;
  }
  state.hosts = list;
  let changed = false;
  if (state.host && !list.some((h) => h.name === state.host)) { state.host = null; changed = true; }
  fill(list);
  wrap.hidden = false;
  updateHostNote();
  if (changed) onChange(null);
}

/* onHostChange(host): host is null for this server's own host. */
export function initHosts(onHostChange) {
  onChange = onHostChange;
  const sel = $('#host-picker');
  sel.addEventListener('change', () => {
    const v = sel.value;
    state.host = v && v !== state.localHost ? v : null;
    const picked = (state.hosts || []).find((h) => h.name === v);
    sel.dataset.up = String(!picked || picked.up !== false);
    updateHostNote();
    onChange(state.host);
  });
}
