/* The top-process table. The stream's rows are the top by CPU; sorting by memory needs
 * the server's memory ranking, refetched at most every few seconds and only while
 * snapshots arrive. Names and command lines are arbitrary strings: textContent only. */

import { API, getJSON } from './api.js';
import { DASH, fmtBytes, isNum, num } from './format.js';
import { $, state } from './state.js';

const PROC_ROWS = 20;
const MEMORY_SORT_REFRESH_MS = 5000;
const CELL_CLASSES = ['num', '', 'opt', 'num', 'num', 'num opt', 'opt', 'num opt'];

let sort = 'cpu';
let memRows = null;
let memFetchedAt = 0;
let memFetching = false;

function renderProcesses(rows) {
  const key = sort === 'memory' ? 'memory_percent' : 'cpu_percent';
  const sorted = rows.slice().sort((a, b) => (num(b[key]) || 0) - (num(a[key]) || 0)).slice(0, PROC_ROWS);
  const tbody = $('#procs tbody');
  while (tbody.rows.length > sorted.length) tbody.deleteRow(-1);
  while (tbody.rows.length < sorted.length) {
    const tr = tbody.insertRow(-1);
    for (let i = 0; i < 8; i += 1) tr.insertCell(-1);
    CELL_CLASSES.forEach((c, i) => { if (c) tr.cells[i].className = c; });
  }
  sorted.forEach((p, i) => {
    const tr = tbody.rows[i];
    const cells = [
      String(p.pid), p.name || '', p.user || '', isNum(p.cpu_percent) ? p.cpu_percent.toFixed(1) : DASH,
      isNum(p.memory_percent) ? p.memory_percent.toFixed(1) : DASH, fmtBytes(p.rss_bytes), p.status || '',
      isNum(p.threads) ? String(p.threads) : DASH,
    ];
    cells.forEach((text, c) => {
      if (tr.cells[c].textContent !== text) tr.cells[c].textContent = text;
    });
    // Viewers get no command line (the server strips it for them): the name then.
    const title = typeof p.cmdline === 'string' && p.cmdline ? p.cmdline : p.name || '';
    if (tr.cells[1].title !== title) tr.cells[1].title = title;
  });
  $('#procs-count').textContent = sorted.length ? `top ${sorted.length} by ${sort === 'memory' ? 'memory' : 'CPU'}` : 'no process data';
}

async function refreshMemoryRows(force) {
  if (memFetching) return;
  if (!force && Date.now() - memFetchedAt < MEMORY_SORT_REFRESH_MS) return;
  memFetching = true;
  try {
    const data = await getJSON(`${API}/metrics/processes?limit=${PROC_ROWS}&sort=memory`);
    memRows = data.processes || [];
  } catch (err) {
    // Fall back to sorting the stream's rows; the next snapshot retries.
    memRows = null;
  } finally {
    memFetchedAt = Date.now();
    memFetching = false;
  }
  if (sort === 'memory') renderProcesses(memRows || (state.latest && state.latest.processes) || []);
}

export function updateProcesses(snap) {
  if (sort === 'memory') {
    refreshMemoryRows(false);
    renderProcesses(memRows || snap.processes || []);
  } else {
    renderProcesses(snap.processes || []);
  }
}

function setSort(next) {
  sort = next;
  for (const btn of document.querySelectorAll('#procs button[data-sort]')) {
    btn.closest('th').setAttribute('aria-sort', btn.dataset.sort === next ? 'descending' : 'none');
  }
  if (next === 'memory') {
    renderProcesses((state.latest && state.latest.processes) || []);
    refreshMemoryRows(true);
  } else if (state.latest) {
    renderProcesses(state.latest.processes || []);
  }
}

export function initProcesses() {
  for (const btn of document.querySelectorAll('#procs button[data-sort]')) {
    btn.addEventListener('click', () => setSort(btn.dataset.sort));
  }
}
