/* CSV export of what a chart shows: the points inside its visible x range (the zoom, the
 * live window or the whole range), one row per timestamp, through a Blob URL on the
 * chart's "CSV" link. The file name says what and when:
 * sysmon_<chart>_<range>_<start>_<end>.csv with UTC times; when the store holds several
 * hosts, sysmon_<host>_<chart>_... names the host whose data the chart shows.
 *
 * Columns: timestamp (epoch seconds, as the API gives them), time_utc (ISO 8601), then one
 * column per series named like alert rules name fields, metric.field, plus {key=value}
 * for a device, mount, interface or core. Empty cells are gaps. */

import { chartById } from './charts.js';
import { isNum } from './format.js';
import { shownHost } from './hosts.js';
import { state } from './state.js';

function cell(text) {
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function columnName(s) {
  return `${s.metric}.${s.field}${s.key ? `{${s.key}=${s.value}}` : ''}`;
}

function stamp(ts) {
  return new Date(ts * 1000).toISOString().replace(/\.\d+Z$/, 'Z').replace(/[-:]/g, '');
}

export function visibleRange(c) {
  const xs = c.data[0];
  if (c.u && isNum(c.u.scales.x.min) && isNum(c.u.scales.x.max)) return [c.u.scales.x.min, c.u.scales.x.max];
  return xs.length ? [xs[0], xs[xs.length - 1]] : [0, 0];
}

export function toCsv(c) {
  const [min, max] = visibleRange(c);
  const lines = [['timestamp', 'time_utc', ...c.def.series.map(columnName)].map(cell).join(',')];
  const d = c.data;
  for (let i = 0; i < d[0].length; i += 1) {
    const ts = d[0][i];
    if (ts < min || ts > max) continue;
    const row = [String(ts), new Date(ts * 1000).toISOString()];
    for (let s = 1; s < d.length; s += 1) row.push(isNum(d[s][i]) ? String(d[s][i]) : '');
    lines.push(row.join(','));
  }
  return `${lines.join('\r\n')}\r\n`;
}

export function fileName(c) {
  const [min, max] = visibleRange(c);
  const what = c.def.id.replace(/[^A-Za-z0-9_.-]+/g, '-');
  const range = state.zoom ? `${state.range}-zoom` : state.range;
  const host = shownHost();
  const who = host ? `${host.replace(/[^A-Za-z0-9_.-]+/g, '-')}_` : '';
  return `sysmon_${who}${what}_${range}_${stamp(min)}_${stamp(max)}.csv`;
}

let lastUrl = null;

// The link's href is set during the click, before the browser follows it, so the file
// holds exactly what is on screen at that moment.
function onClick(e) {
  const a = e.target.closest('a.csv');
  if (!a) return;
  const c = chartById(a.dataset.chart);
  if (!c) { e.preventDefault(); return; }
  if (lastUrl) URL.revokeObjectURL(lastUrl);
  lastUrl = URL.createObjectURL(new Blob([toCsv(c)], { type: 'text/csv' }));
  a.href = lastUrl;
  a.download = fileName(c);
}

export function initExport() {
  document.addEventListener('click', onClick);
}
