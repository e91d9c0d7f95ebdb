/* The header (host, OS, uptime, last update) and the "current values" cards, one per
 * mount included. Everything from the server is written with textContent. */

import { DASH, fmtBytes, fmtClock, fmtDuration, fmtPct, fmtRate, isNum, num } from './format.js';
import { $, state } from './state.js';

// Used when /api/v1/system has no thresholds for a key (issue 5 defaults).
const FALLBACK_THRESHOLDS = {
  'cpu.percent': { warning: 80, critical: 90 },
  'memory.percent': { warning: 90 },
  'disk.percent': { warning: 85 },
};

function levelFor(key, v) {
  const t = (state.thresholds && state.thresholds[key]) || FALLBACK_THRESHOLDS[key];
  if (!t || !isNum(v)) return 'ok';
  if (isNum(t.critical) && v >= t.critical) return 'critical';
  if (isNum(t.warning) && v >= t.warning) return 'warning';
  return 'ok';
}

function setCard(card, { value, detail, level = 'ok', bar = null }) {
  if (!card) return;
  if (value !== undefined) $('.value', card).textContent = value;
  if (detail !== undefined) $('.detail', card).textContent = detail || '\u00a0';
  card.dataset.level = level;
  const tag = $('.tag', card);
  if (tag) tag.textContent = level === 'ok' ? '' : level;
  const fill = $('.bar > span', card);
  if (fill) fill.style.width = `${isNum(bar) ? Math.max(0, Math.min(100, bar)) : 0}%`;
}

function mountCard(mount) {
  const id = `card-mount-${encodeURIComponent(mount).replace(/[^A-Za-z0-9_-]/g, '_')}`;
  let card = document.getElementById(id);
  if (card) return card;
  card = document.createElement('article');
  card.className = 'card mount';
  card.id = id;
  card.dataset.mount = mount;
  card.dataset.level = 'ok';
  const h = document.createElement('h3');
  h.id = `${id}-h`;
  h.textContent = `Disk ${mount}`;
  h.title = mount;
  card.setAttribute('aria-labelledby', h.id);
  const value = document.createElement('p'); value.className = 'value'; value.textContent = DASH;
  const tag = document.createElement('p'); tag.className = 'tag';
  const detail = document.createElement('p'); detail.className = 'detail';
  const bar = document.createElement('div'); bar.className = 'bar'; bar.setAttribute('aria-hidden', 'true');
  bar.appendChild(document.createElement('span'));
  card.append(h, value, tag, detail, bar);
  $('#cards').appendChild(card);
  return card;
}

// The inodes collector's share of inodes in use for a mount, whatever its field is called
// (the first percentage it reports).
function inodesPercent(m, mount) {
  const row = m.inodes && m.inodes.mount && m.inodes.mount[mount];
  if (!row) return null;
  if (isNum(row.percent)) return row.percent;
  for (const [k, v] of Object.entries(row)) if (k.endsWith('percent') && isNum(v)) return v;
  return null;
}

export function renderCards(snap) {
  const m = snap.metrics || {};
  const tot = (name) => (m[name] && m[name].total) || {};
  const cpu = tot('cpu');
  const mem = tot('memory');
  const disk = tot('disk');
  const net = tot('network');

  const cpuParts = [];
  if (isNum(cpu.user_percent)) cpuParts.push(`user ${fmtPct(cpu.user_percent)}`);
  if (isNum(cpu.system_percent)) cpuParts.push(`sys ${fmtPct(cpu.system_percent)}`);
  if (isNum(cpu.iowait_percent)) cpuParts.push(`iowait ${fmtPct(cpu.iowait_percent)}`);
  setCard($('#card-cpu'), {
    value: fmtPct(cpu.percent), detail: cpuParts.join(' \u00b7 '),
    level: levelFor('cpu.percent', cpu.percent), bar: cpu.percent,
  });

  setCard($('#card-memory'), {
    value: fmtPct(mem.percent),
    detail: isNum(mem.used_bytes) && isNum(mem.total_bytes)
      ? `${fmtBytes(mem.used_bytes)} of ${fmtBytes(mem.total_bytes)}` : '',
    level: levelFor('memory.percent', mem.percent), bar: mem.percent,
  });

  const noSwap = isNum(mem.swap_total_bytes) && mem.swap_total_bytes === 0;
  setCard($('#card-swap'), {
    value: noSwap ? 'none' : fmtPct(mem.swap_percent),
    detail: noSwap ? 'no swap configured'
      : isNum(mem.swap_used_bytes) && isNum(mem.swap_total_bytes)
        ? `${fmtBytes(mem.swap_used_bytes)} of ${fmtBytes(mem.swap_total_bytes)}` : '',
    level: levelFor('memory.swap_percent', mem.swap_percent), bar: mem.swap_percent,
  });

  const ncores = state.cores.length || (state.system && state.system.cpu_count) || 1;
  setCard($('#card-load'), {
    value: isNum(cpu.load_1) ? cpu.load_1.toFixed(2) : DASH,
    detail: isNum(cpu.load_5) ? `5 min ${cpu.load_5.toFixed(2)} \u00b7 15 min ${num(cpu.load_15) === null ? DASH : cpu.load_15.toFixed(2)}` : '',
    level: levelFor('cpu.load_1', cpu.load_1),
    bar: isNum(cpu.load_1) ? (cpu.load_1 / ncores) * 100 : null,
  });

  const netCard = $('#card-network');
  $('.in', netCard).textContent = `\u2193 ${fmtRate(net.bytes_recv_per_sec)}`;
  $('.out', netCard).textContent = `\u2191 ${fmtRate(net.bytes_sent_per_sec)}`;
  $('.detail', netCard).textContent = isNum(net.packets_recv_per_sec)
    ? `${Math.round(net.packets_recv_per_sec)} pkt/s in \u00b7 ${Math.round(num(net.packets_sent_per_sec) || 0)} pkt/s out`
    : '\u00a0';
  const ioCard = $('#card-diskio');
  $('.in', ioCard).textContent = `R ${fmtRate(disk.read_bytes_per_sec)}`;
  $('.out', ioCard).textContent = `W ${fmtRate(disk.write_bytes_per_sec)}`;
  $('.detail', ioCard).textContent = isNum(disk.busy_percent) ? `busy ${fmtPct(disk.busy_percent)}` : '\u00a0';

  const mounts = (m.disk && m.disk.mount) || {};
  const seen = new Set();
  for (const name of Object.keys(mounts).sort()) {
    const d = mounts[name] || {};
    const card = mountCard(name);
    seen.add(card.id);
    const parts = [];
    if (isNum(d.used_bytes) && isNum(d.total_bytes)) parts.push(`${fmtBytes(d.used_bytes)} of ${fmtBytes(d.total_bytes)}`);
    const inodes = inodesPercent(m, name);
    if (inodes !== null) parts.push(`inodes ${fmtPct(inodes)}`);
    setCard(card, {
      value: fmtPct(d.percent), detail: parts.join(' \u00b7 '),
      level: levelFor('disk.percent', d.percent), bar: d.percent,
    });
  }
  for (const card of document.querySelectorAll('.card.mount')) {
    if (!seen.has(card.id)) card.remove();
  }
}

export function renderHeader(snap) {
  const t = $('#updated');
  t.textContent = fmtClock(snap.timestamp);
  t.dataset.ts = String(snap.timestamp);
  t.setAttribute('datetime', new Date(snap.timestamp * 1000).toISOString());
  if (state.system && isNum(state.system.boot_time)) {
    $('#uptime').textContent = fmtDuration(snap.timestamp - state.system.boot_time);
  }
  const errors = snap.errors || {};
  const names = Object.keys(errors);
  const notice = $('#notice');
  if (names.length) {
    notice.textContent = `Collector errors: ${names.map((n) => `${n}: ${errors[n]}`).join('; ')}`;
    notice.hidden = false;
  } else if (notice.dataset.kind !== 'sticky') {
    notice.hidden = true;
  }
}

export function renderSystem(sys) {
  $('#host').textContent = sys.hostname || DASH;
  document.title = `${sys.hostname || 'sysmon'} \u00b7 sysmon`;
  $('#os').textContent = sys.os || DASH;
  const logical = sys.cpu_count;
  const physical = sys.cpu_count_physical;
  $('#cores').textContent = isNum(logical)
    ? (isNum(physical) && physical !== logical ? `${logical} (${physical} physical)` : String(logical))
    : state.cores.length ? String(state.cores.length) : DASH;
  if (isNum(sys.uptime_seconds)) $('#uptime').textContent = fmtDuration(sys.uptime_seconds);
}
