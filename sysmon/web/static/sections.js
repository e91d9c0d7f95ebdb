/* Per-device sections: disks, network interfaces, filesystems, and whatever else the
 * server collects (sensors, pressure, containers, GPUs, ...), each shown only when its
 * metric exists.
 *
 * What exists comes from the catalog, GET /api/v1/metrics ({metrics: [{name, labels,
 * fields: [{field, unit, description, labels, ...}]}]}), and which devices exist from the
 * latest snapshot (/api/v1/metrics/current lists them under each label key). A server
 * without the catalog answers 404; then the snapshot's keys alone are used and units are
 * guessed from field names. Known metrics get hand-made charts per device; any other
 * metric gets one chart per unit with a line per device.
 */

import { API, getJSON } from './api.js';
import { createFigure, drawOnlyOnScreen, registerChart, removeChart } from './charts.js';
import { shortField } from './format.js';
import { $ } from './state.js';

const MAX_ITEMS = 24; // disks, interfaces, mounts charted per section; the note says how many exist
const TOTALS = 'total';
const TITLES = {
  sensors: 'Sensors', pressure: 'Pressure (PSI)', containers: 'Containers', gpu: 'GPUs', gpus: 'GPUs',
};
// Metrics that already have their place on the page.
const HANDLED = new Set(['cpu', 'memory', 'disk', 'network', 'processes', 'inodes']);

let observer = null;
let signature = '';
let onShow = () => {};

/* ---------- what exists ---------- */

function guessUnit(field) {
  if (/_bytes_per_sec$/.test(field)) return 'bytes/s';
  if (/_bytes$/.test(field)) return 'bytes';
  if (/(^|_)percent$/.test(field)) return '%';
  if (/_per_sec$/.test(field)) return '/s';
  if (/_celsius$/.test(field)) return '\u00b0C';
  return '';
}

/* {name: {fields: Map(field -> {unit, description, labels}), items: {key: [values]}}} */
function inventory(catalog, current) {
  const snap = (current && current.metrics) || {};
  const out = {};
  const list = catalog && Array.isArray(catalog.metrics) ? catalog.metrics : null;
  if (list) {
    for (const m of list) {
      if (!m || typeof m.name !== 'string') continue;
      const fields = new Map();
      for (const f of m.fields || []) {
        if (f && typeof f.field === 'string') {
          fields.set(f.field, { unit: f.unit || '', description: f.description || '', labels: f.labels || [] });
        }
      }
      out[m.name] = { fields, items: {}, labels: Array.isArray(m.labels) ? m.labels : [] };
    }
  }
  for (const [name, body] of Object.entries(snap)) {
    if (!body || typeof body !== 'object') continue;
    if (!out[name]) {
      if (list) continue; // the catalog is the list of metrics when there is one
      out[name] = { fields: new Map(), items: {}, labels: [] };
    }
    const entry = out[name];
    for (const [key, group] of Object.entries(body)) {
      if (!group || typeof group !== 'object') continue;
      if (key === TOTALS) {
        if (!list) for (const f of Object.keys(group)) if (!entry.fields.has(f)) entry.fields.set(f, { unit: guessUnit(f), description: '', labels: [] });
        continue;
      }
      entry.items[key] = Object.keys(group).sort(naturalCompare);
      if (!entry.labels.includes(key)) entry.labels.push(key);
      if (!list) {
        for (const row of Object.values(group)) {
          for (const f of Object.keys(row || {})) {
            const known = entry.fields.get(f) || { unit: guessUnit(f), description: '', labels: [] };
            if (!known.labels.includes(key)) known.labels = [...known.labels, key];
            entry.fields.set(f, known);
          }
        }
      }
    }
  }
  return out;
}

function naturalCompare(a, b) {
  return a.localeCompare(b, undefined, { numeric: true });
}

function has(inv, metric, field, key) {
  const f = inv[metric] && inv[metric].fields.get(field);
  return Boolean(f) && (!key || f.labels.includes(key));
}

function idPart(text) {
  return String(text).replace(/[^A-Za-z0-9_-]+/g, '_');
}

/* ---------- chart definitions ---------- */

function series(metric, field, label, key = null, value = null) {
  return { metric, field, label, key, value };
}

// Hand-made charts for one device of a known metric: [suffix, title, unit, [[field, label]]].
const DEVICE_CHARTS = {
  disk: [
    ['io', 'throughput', 'bytes/s', [['read_bytes_per_sec', 'read'], ['write_bytes_per_sec', 'write']]],
    ['iops', 'IOPS', 'ops/s', [['read_ops_per_sec', 'read'], ['write_ops_per_sec', 'write']]],
    ['busy', 'busy', '%', [['busy_percent', 'busy']]],
  ],
  network: [
    ['traffic', 'traffic', 'bytes/s', [['bytes_recv_per_sec', 'in'], ['bytes_sent_per_sec', 'out']]],
    ['errors', 'errors and drops', 'packets/s', [
      ['errin_per_sec', 'errors in'], ['errout_per_sec', 'errors out'],
      ['dropin_per_sec', 'drops in'], ['dropout_per_sec', 'drops out']]],
  ],
};

function deviceDefs(inv, metric, key, item) {
  const defs = [];
  for (const [suffix, title, unit, fields] of DEVICE_CHARTS[metric]) {
    const present = fields.filter(([f]) => has(inv, metric, f, key));
    if (!present.length) continue;
    defs.push({
      id: `${metric}-${idPart(item)}-${suffix}`,
      title: `${item} \u00b7 ${title}`,
      unit,
      yRange: unit === '%' ? 'pct100' : 'auto',
      series: present.map(([f, label]) => series(metric, f, label, key, item)),
    });
  }
  return defs;
}

// The inodes collector's share in use for a mount: its first percentage field.
function inodesPercentField(inv) {
  const m = inv.inodes;
  if (!m) return null;
  for (const [f, info] of m.fields) if (info.unit === '%' || /percent$/.test(f)) return f;
  return null;
}

function mountDefs(inv, mount) {
  const defs = [];
  const list = [];
  if (has(inv, 'disk', 'percent', 'mount')) list.push(series('disk', 'percent', 'space used', 'mount', mount));
  const inodesField = inodesPercentField(inv);
  const inodeMounts = (inv.inodes && inv.inodes.items.mount) || [];
  if (inodesField && inodeMounts.includes(mount)) list.push(series('inodes', inodesField, 'inodes used', 'mount', mount));
  if (list.length) {
    defs.push({
      id: `mount-${idPart(mount)}`,
      title: `${mount} \u00b7 ${list.length > 1 ? 'space and inodes' : 'space'}`,
      unit: '%', yRange: 'pct100', series: list,
    });
  }
  // An inodes collector without a percentage: chart its counts.
  if (!inodesField && inodeMounts.includes(mount)) {
    const counts = [...inv.inodes.fields].filter(([, info]) => info.labels.includes('mount'));
    for (const [unit, head, group] of byUnit(counts)) {
      defs.push({
        id: `mount-${idPart(mount)}-inodes-${idPart(unit || 'value')}${head ? `-${idPart(head)}` : ''}`,
        title: `${mount} \u00b7 inodes`, unit, yRange: 'auto',
        series: group.map(([f]) => series('inodes', f, shortField(f), 'mount', mount)),
      });
    }
  }
  return defs;
}

const MAX_SERIES_ITEMS = 12; // devices per chart of another metric (one line each)

function byUnit(fields) {
  const groups = new Map();
  for (const entry of fields) {
    const unit = entry[1].unit;
    if (!groups.has(unit)) groups.set(unit, []);
    groups.get(unit).push(entry);
  }
  // A unit shared by many fields (pressure: 24 percentages) is split by the fields'
  // first word (cpu_..., memory_..., io_...), so no chart has two dozen lines.
  const out = [];
  for (const [unit, list] of groups) {
    if (list.length <= 8) { out.push([unit, '', list]); continue; }
    const parts = new Map();
    for (const entry of list) {
      const head = entry[0].split('_')[0];
      if (!parts.has(head)) parts.set(head, []);
      parts.get(head).push(entry);
    }
    for (const [head, part] of parts) out.push([unit, head, part]);
  }
  return out;
}

/* Another metric (sensors, pressure, containers, GPUs, ...): per label key, one chart per
 * unit with a line per device (a chart per device does not scale to 40 containers), and
 * its totals-only fields per unit. */
function genericDefs(inv, metric, snapshot) {
  const m = inv[metric];
  const fields = [...m.fields];
  const defs = [];
  const yRange = (unit) => (unit === '%' ? 'pctAuto' : 'auto');
  const hint = (list) => list.map(([f, info]) => `${f}: ${info.description || f}`).join('\n');
  for (const key of m.labels) {
    const items = (m.items[key] || []).slice(0, MAX_SERIES_ITEMS);
    if (!items.length) continue;
    const labelled = fields.filter(([, info]) => info.labels.includes(key));
    for (const [unit, head, group] of byUnit(labelled)) {
      const list = [];
      for (const item of items) {
        for (const [f] of group) list.push(series(metric, f, group.length > 1 ? `${item} ${shortField(f)}` : item, key, item));
      }
      const what = group.length === 1 ? shortField(group[0][0]) : [head, unit || 'value'].filter(Boolean).join(' ');
      defs.push({
        id: `${metric}-${idPart(key)}-${idPart(unit || 'value')}${head ? `-${idPart(head)}` : ''}`,
        title: `${what} by ${key}`,
        hint: hint(group), unit, yRange: yRange(unit), many: list.length > 8, series: list,
      });
    }
  }
  const totals = snapshot && snapshot.total ? fields.filter(([f, info]) => !info.labels.length && f in snapshot.total) : [];
  for (const [unit, head, group] of byUnit(totals)) {
    const what = group.length === 1 ? shortField(group[0][0]) : `${head || metric} \u00b7 ${unit || 'value'}`;
    defs.push({
      id: `${metric}-total-${idPart(unit || 'value')}${head ? `-${idPart(head)}` : ''}`,
      title: what,
      hint: hint(group), unit, yRange: yRange(unit), many: group.length > 8,
      series: group.map(([f]) => series(metric, f, shortField(f))),
    });
  }
  return defs;
}

/* The sections to show: [{id, title, note, defs}] in page order. */
export function plan(catalog, current) {
  const inv = inventory(catalog, current);
  const sections = [];
  const add = (id, title, items, make, noun = 'item') => {
    const shown = items.slice(0, MAX_ITEMS);
    const defs = shown.flatMap(make);
    if (!defs.length) return;
    const more = items.length - shown.length;
    const count = `${items.length} ${noun}${items.length === 1 ? '' : 's'}`;
    sections.push({ id, title, defs, note: more > 0 ? `${count}, first ${MAX_ITEMS} shown` : count });
  };
  const items = (metric, key) => (inv[metric] && inv[metric].items[key]) || [];
  if (inv.disk) add('disks', 'Disks', items('disk', 'device'), (d) => deviceDefs(inv, 'disk', 'device', d), 'device');
  if (inv.network) {
    // Loopback last: its traffic is the host talking to itself.
    const ifaces = items('network', 'interface').slice().sort((a, b) => (a === 'lo') - (b === 'lo') || naturalCompare(a, b));
    add('interfaces', 'Network interfaces', ifaces, (i) => deviceDefs(inv, 'network', 'interface', i), 'interface');
  }
  if (inv.disk) add('filesystems', 'Filesystems', items('disk', 'mount'), (m) => mountDefs(inv, m), 'mount');
  // Any other metric, shown when the snapshot has it (a collector in the catalog that
  // found nothing on this host, say GPUs, stays hidden).
  for (const name of Object.keys(inv).sort()) {
    const snapshot = current && current.metrics && current.metrics[name];
    if (HANDLED.has(name) || !inv[name].fields.size || !snapshot) continue;
    const defs = genericDefs(inv, name, snapshot);
    if (!defs.length) continue;
    const counts = inv[name].labels.filter((k) => items(name, k).length).map((k) => {
      const n = items(name, k).length;
      return `${n} ${k}${n === 1 ? '' : 's'}${n > MAX_SERIES_ITEMS ? ` (first ${MAX_SERIES_ITEMS} shown)` : ''}`;
    });
    sections.push({ id: `m-${idPart(name)}`, title: TITLES[name] || name.charAt(0).toUpperCase() + name.slice(1), defs, note: counts.join(', ') });
  }
  // Ids come from device names with odd characters replaced, so two names can meet
  // ("a.b" and "a_b"): number the later ones, since an id names one chart and one figure.
  const used = new Set();
  for (const sec of sections) {
    for (const def of sec.defs) {
      let id = def.id;
      for (let n = 2; used.has(id); n += 1) id = `${def.id}-${n}`;
      def.id = id;
      used.add(id);
    }
  }
  return sections;
}

/* ---------- on the page ---------- */

function sectionElement(sec) {
  const el = document.createElement('section');
  el.className = 'panel device-section';
  el.id = `sec-${sec.id}`;
  el.setAttribute('aria-labelledby', `sec-${sec.id}-h`);
  const head = document.createElement('div');
  head.className = 'section-head';
  const h = document.createElement('h2');
  h.id = `sec-${sec.id}-h`;
  h.textContent = sec.title;
  const note = document.createElement('span');
  note.className = 'muted';
  note.textContent = sec.note;
  head.append(h, note);
  const grid = document.createElement('div');
  grid.className = 'charts';
  el.append(head, grid);
  return { el, grid };
}

function watch(c) {
  if (!observer) {
    // Build a chart (and load its history) when it comes within half a screen of the
    // viewport: soon enough to be drawn when scrolled to, late enough that a page nobody
    // scrolls does not pay for it.
    observer = new IntersectionObserver((entries) => {
      for (const e of entries) {
        if (!e.isIntersecting) continue;
        observer.unobserve(e.target);
        const chart = e.target.sysmonChart;
        if (chart) onShow(chart);
      }
    }, { rootMargin: '50% 0px' });
  }
  c.fig.sysmonChart = c;
  observer.observe(c.fig);
}

/* Show the sections; a second call with the same sections changes nothing. onShowChart(c)
 * builds a chart when it scrolls into view. */
export function renderSections(sections, onShowChart) {
  onShow = onShowChart;
  const sig = JSON.stringify(sections.map((s) => [s.id, s.defs.map((d) => [d.id, d.series.length])]));
  if (sig === signature) return false;
  signature = sig;
  const root = $('#sections');
  for (const fig of root.querySelectorAll('figure.chart')) {
    if (observer) observer.unobserve(fig);
    if (fig.sysmonChart) removeChart(fig.sysmonChart);
  }
  root.replaceChildren();
  for (const sec of sections) {
    const { el, grid } = sectionElement(sec);
    for (const def of sec.defs) {
      const fig = createFigure(def);
      grid.appendChild(fig);
      const c = registerChart(def, fig);
      drawOnlyOnScreen(c);
      watch(c);
    }
    root.appendChild(el);
  }
  return true;
}

export async function loadCatalog() {
  try {
    return await getJSON(`${API}/metrics`);
  } catch (err) {
    return null; // no catalog on this server: the snapshot's keys are used
  }
}
