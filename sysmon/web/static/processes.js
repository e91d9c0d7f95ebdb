/* The top-process table. The stream's rows are the top by CPU; sorting by memory needs
 * the server's memory ranking, refetched at most every few seconds and only while
 * snapshots arrive. Names and command lines are arbitrary strings: textContent only.
 *
 * Tree (the "tree" toggle; flat is the default): /metrics/processes?tree=1 nests the
 * rows by ppid, each with children and subtree_cpu_percent / subtree_memory_percent
 * (itself plus its descendants in the table). Parents start folded and then show the
 * subtree totals ("Σ 12.3", italic; the title gives their own value); unfolded, they
 * show their own values with their children indented below. What is unfolded is kept
 * by pid across refreshes. The tree is refetched like the memory ranking: at most every
 * few seconds, only while snapshots arrive (the stream carries flat rows only). */

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
let treeMode = false;
let treeRoots = null;
let treeFetchedAt = 0;
let treeFetching = false;
const unfolded = new Set(); // pids whose children are shown

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

function descendants(p) {
  let n = 0;
  for (const c of p.children || []) n += 1 + descendants(c);
  return n;
}

function pct(v) {
  return isNum(v) ? v.toFixed(1) : DASH;
}

function treeRow(p, depth) {
  const tr = document.createElement('tr');
  for (let i = 0; i < 8; i += 1) tr.insertCell(-1);
  CELL_CLASSES.forEach((c, i) => { if (c) tr.cells[i].className = c; });
  const kids = Array.isArray(p.children) ? p.children : [];
  const open = kids.length > 0 && unfolded.has(p.pid);
  tr.dataset.pid = String(p.pid);
  tr.dataset.depth = String(depth);
  tr.dataset.parent = isNum(p.ppid) ? String(p.ppid) : '';
  const name = tr.cells[1];
  name.style.paddingLeft = `${depth * 1.2 + 0.3}em`;
  if (kids.length) {
    const n = descendants(p);
    const btn = document.createElement('button');
    btn.type = 'button';
    btn.className = 'fold';
    btn.dataset.pid = String(p.pid);
    btn.setAttribute('aria-expanded', String(open));
    btn.setAttribute('aria-label', `${open ? 'Fold' : 'Unfold'} ${p.name || p.pid}: ${n} process${n === 1 ? '' : 'es'} below`);
    btn.textContent = open ? '\u25be' : '\u25b8';
    name.appendChild(btn);
    tr.dataset.folded = open ? 'no' : 'yes';
  } else {
    const leaf = document.createElement('span');
    leaf.className = 'leaf';
    name.appendChild(leaf);
  }
  const label = document.createElement('span');
  label.textContent = p.name || '';
  name.appendChild(label);
  name.title = typeof p.cmdline === 'string' && p.cmdline ? p.cmdline : p.name || '';
  const cells = [String(p.pid), null, p.user || '', pct(p.cpu_percent), pct(p.memory_percent),
    fmtBytes(p.rss_bytes), p.status || '', isNum(p.threads) ? String(p.threads) : DASH];
  cells.forEach((text, c) => { if (text !== null) tr.cells[c].textContent = text; });
  if (kids.length && !open) {
    // Folded: what the whole subtree uses, the process's own share in the title.
    const n = descendants(p);
    [[3, 'subtree_cpu_percent', 'cpu_percent', 'CPU'], [4, 'subtree_memory_percent', 'memory_percent', 'memory']].forEach(([c, sub, own, what]) => {
      const cell = tr.cells[c];
      cell.textContent = isNum(p[sub]) ? `\u03a3\u00a0${p[sub].toFixed(1)}` : DASH;
      cell.classList.add('subtree');
      cell.title = `${what} of this process and the ${n} below it; itself ${pct(p[own])} %`;
    });
  }
  return [tr, open ? kids : []];
}

function renderTree(roots) {
  const rows = [];
  let count = 0;
  const walk = (p, depth) => {
    count += 1;
    const [tr, kids] = treeRow(p, depth);
    rows.push(tr);
    for (const c of kids) walk(c, depth + 1);
  };
  for (const r of roots) walk(r, 0);
  $('#procs tbody').replaceChildren(...rows);
  $('#procs-count').textContent = roots.length
    ? `${roots.length} tree${roots.length === 1 ? '' : 's'} by ${sort === 'memory' ? 'memory' : 'CPU'}, ${count} shown`
    : 'no process data';
}

async function refreshTree(force) {
  if (treeFetching) return;
  if (!force && Date.now() - treeFetchedAt < MEMORY_SORT_REFRESH_MS) return;
  treeFetching = true;
  try {
    const data = await getJSON(`${API}/metrics/processes?limit=${PROC_ROWS}&sort=${sort}&tree=1`);
    treeRoots = Array.isArray(data.processes) ? data.processes : [];
  } catch (err) {
    treeRoots = null; // the flat rows meanwhile; the next snapshot retries
  } finally {
    treeFetchedAt = Date.now();
    treeFetching = false;
  }
  if (treeMode) showTree();
}

function showTree() {
  if (treeRoots) renderTree(treeRoots);
  else { $('#procs tbody').replaceChildren(); renderProcesses((state.latest && state.latest.processes) || []); }
}

function onFold(e) {
  const btn = e.target.closest('button.fold');
  if (!btn || !treeMode) return;
  const pid = Number(btn.dataset.pid);
  if (unfolded.has(pid)) unfolded.delete(pid); else unfolded.add(pid);
  showTree();
  const again = document.querySelector(`#procs button.fold[data-pid="${pid}"]`);
  if (again) again.focus();
}

function setTree(on) {
  treeMode = on;
  $('#procs-tree').setAttribute('aria-pressed', String(on));
  $('#procs tbody').replaceChildren(); // the flat renderer reuses rows of its own shape
  if (on) {
    treeRoots = null;
    refreshTree(true);
  } else if (sort === 'memory') {
    renderProcesses(memRows || (state.latest && state.latest.processes) || []);
  } else {
    renderProcesses((state.latest && state.latest.processes) || []);
  }
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
  if (sort === 'memory' && !treeMode) renderProcesses(memRows || (state.latest && state.latest.processes) || []);
}

export function updateProcesses(snap) {
  if (treeMode) {
    refreshTree(false);
    return;
  }
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
  if (treeMode) {
    refreshTree(true);
  } else if (next === 'memory') {
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
  $('#procs-tree').addEventListener('click', () => setTree(!treeMode));
  $('#procs tbody').addEventListener('click', onFold);
}
