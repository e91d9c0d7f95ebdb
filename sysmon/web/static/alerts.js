/* The alerts panel: active alerts and the last day's history. Hidden while the server has
 * no alerts API (404) or alerting is disabled (503), until the next reconnect. */

import { API, HttpError, getJSON } from './api.js';
import { fmtDateTime, isNum } from './format.js';
import { $, nowServer } from './state.js';

let available = true;

export function alertsAvailable() { return available; }
export function resetAlerts() { available = true; }

function firstArray(data, keys) {
  if (Array.isArray(data)) return data;
  if (data && typeof data === 'object') {
    for (const k of keys) if (Array.isArray(data[k])) return data[k];
    for (const v of Object.values(data)) if (Array.isArray(v)) return v;
  }
  return [];
}
function pick(obj, keys) {
  for (const k of keys) if (obj[k] !== undefined && obj[k] !== null && obj[k] !== '') return obj[k];
  return undefined;
}
function toEpoch(v) {
  if (isNum(v)) return v;
  if (typeof v === 'string') { const t = Date.parse(v); return Number.isNaN(t) ? null : t / 1000; }
  return null;
}

// Shapes of /api/v1/alerts ({alerts: [...]}) and /alerts/history ({events: [...]}); the
// reads are lenient so a renamed optional field degrades to a shorter line, not an error.
function alertItem(a) {
  const li = document.createElement('li');
  const severity = String(pick(a, ['severity', 'level']) || 'warning').toLowerCase();
  const phase = String(pick(a, ['kind', 'state']) || '');
  li.dataset.level = phase === 'resolved' ? 'ok' : severity === 'critical' ? 'critical' : 'warning';
  const sev = document.createElement('span'); sev.className = 'sev';
  // Active alerts are firing unless they say otherwise; history events always say.
  const showPhase = phase && (phase !== 'firing' || a.kind !== undefined);
  sev.textContent = [severity, showPhase ? phase : '', a.silenced ? 'silenced' : '']
    .filter(Boolean).join(' \u00b7 ');
  const title = document.createElement('strong');
  title.textContent = String(pick(a, ['rule', 'name', 'title', 'id']) || 'alert');
  const msg = document.createElement('span'); msg.className = 'msg';
  const value = pick(a, ['value', 'current_value']);
  const thr = pick(a, ['threshold']);
  let text = pick(a, ['message', 'summary', 'description']);
  if (!text) {
    const labels = a.labels && typeof a.labels === 'object'
      ? Object.entries(a.labels).map(([k, v]) => `${k}=${v}`).join(',') : '';
    const metric = `${a.metric || ''}${labels ? `{${labels}}` : ''}`;
    const cmp = isNum(thr) ? ` (${a.operator || '>'} ${thr})` : '';
    text = `${metric}${isNum(value) ? ` = ${value.toFixed(1)}` : ''}${cmp}`.trim();
  }
  msg.textContent = text || '';
  const time = document.createElement('time');
  const ts = toEpoch(pick(a, ['timestamp', 'firing_since', 'since', 'started_at', 'time']));
  time.textContent = fmtDateTime(ts);
  if (ts !== null) time.setAttribute('datetime', new Date(ts * 1000).toISOString());
  li.append(sev, title, msg, time);
  return li;
}

function fillList(list, items, empty) {
  list.replaceChildren();
  if (!items.length) {
    const li = document.createElement('li'); li.className = 'none'; li.textContent = empty;
    list.appendChild(li);
    return;
  }
  for (const a of items) list.appendChild(alertItem(a));
}

export async function loadAlerts() {
  const section = $('#alerts');
  let active;
  try {
    active = await getJSON(`${API}/alerts`);
  } catch (err) {
    if (err instanceof HttpError && (err.status === 404 || err.status === 503)) {
      available = false;
      section.hidden = true;
    }
    return;
  }
  available = true;
  section.hidden = false;
  const current = firstArray(active, ['alerts', 'active', 'items']);
  fillList($('#alerts-active'), current, 'No active alerts');
  $('#alerts-h').textContent = current.length ? `Alerts (${current.length} active)` : 'Alerts';
  try {
    // History comes oldest first: ask for the last day and show the newest 20.
    const since = (nowServer() - 86400).toFixed(0);
    const hist = await getJSON(`${API}/alerts/history?start=${since}&limit=1000`);
    const events = firstArray(hist, ['events', 'history', 'alerts', 'items']);
    $('#alerts-past').hidden = false;
    fillList($('#alerts-history'), events.slice(-20).reverse(), 'No alerts in the last 24 h');
  } catch (err) {
    $('#alerts-past').hidden = true;
  }
}
