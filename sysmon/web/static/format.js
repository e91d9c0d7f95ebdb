/* Units and numbers for people. Memory and sizes are binary (MiB/GiB) because that is
 * how the kernel and `free` count them; transfer rates are decimal (KB/s, MB/s) as
 * network and disk vendors quote them. Every formatter answers a dash for a missing
 * value, so a gap reads as "no data", never as 0. */

export const DASH = '\u2014';
export const isNum = (v) => typeof v === 'number' && Number.isFinite(v);
export const num = (v) => (isNum(v) ? v : null);

function scaled(v, base, units) {
  let i = 0;
  let x = Math.abs(v);
  while (x >= base && i < units.length - 1) { x /= base; i += 1; }
  const digits = x >= 100 || i === 0 ? 0 : 1;
  return `${(Math.sign(v) * x).toFixed(digits)} ${units[i]}`;
}

export function fmtPct(v) {
  return isNum(v) ? `${v.toFixed(1)}%` : DASH;
}
export function fmtBytes(v) {
  return isNum(v) ? scaled(v, 1024, ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB']) : DASH;
}
export function fmtRate(v) {
  return isNum(v) ? scaled(v, 1000, ['B/s', 'KB/s', 'MB/s', 'GB/s', 'TB/s']) : DASH;
}
// Plain quantities (load, ops/s, packets/s, °C): a few significant digits, k/M above 10^4.
export function fmtNumber(v, unit = '') {
  if (!isNum(v)) return DASH;
  const a = Math.abs(v);
  let text;
  if (a >= 1e6) text = `${(v / 1e6).toFixed(1)}M`;
  else if (a >= 1e4) text = `${(v / 1e3).toFixed(1)}k`;
  else if (a >= 100 || Number.isInteger(v)) text = v.toFixed(0);
  else if (a >= 10) text = v.toFixed(1);
  else text = v.toFixed(2);
  return unit ? `${text} ${unit}` : text;
}
export function fmtDuration(s) {
  if (!isNum(s) || s < 0) return DASH;
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d > 0) return `${d} d ${h} h`;
  if (h > 0) return `${h} h ${m} min`;
  return `${m} min`;
}
export function fmtClock(ts) {
  return isNum(ts) ? new Date(ts * 1000).toLocaleTimeString() : DASH;
}
export function fmtDateTime(ts) {
  return isNum(ts) ? new Date(ts * 1000).toLocaleString() : DASH;
}

/* The unit strings collectors declare (MetricInfo.unit, served by the catalog) mapped to
 * a chart kind: 'pct' charts are fixed to 0..100, 'bytes' get binary axis steps. */
export function unitKind(unit) {
  if (unit === '%') return 'pct';
  if (unit === 'bytes') return 'bytes';
  if (unit === 'bytes/s') return 'rate';
  return 'plain';
}

export function formatterFor(unit) {
  const kind = unitKind(unit);
  if (kind === 'pct') return fmtPct;
  if (kind === 'bytes') return fmtBytes;
  if (kind === 'rate') return fmtRate;
  return (v) => fmtNumber(v, unit);
}

// "read_bytes_per_sec" -> "read", "errin_per_sec" -> "errin", "temperature_celsius" ->
// "temperature": the unit is on the axis and in the legend values already.
export function shortField(field) {
  const s = field.replace(/_(bytes_per_sec|per_sec|percent|bytes|celsius|watts|rpm|seconds)$/, '');
  return (s || field).replace(/_/g, ' ');
}
