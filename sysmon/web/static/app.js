/* sysmon dashboard: plain JS, no build step.
 *
 * Data flow: one EventSource on /api/v1/stream pushes a snapshot per collection tick.
 * Each snapshot updates the cards and the process table, and in live mode appends one
 * point to every chart (no refetching). History for the other ranges comes from
 * /api/v1/metrics/{name}?resolution=auto. After a disconnect the page shows a
 * "reconnecting" badge; on the first snapshot after it the page reloads what a server
 * restart may have changed (system info, the live window, alerts) so nothing stays stale.
 *
 * Everything from the server is written with textContent, never innerHTML: process names
 * and command lines are arbitrary strings.
 *
 * Authentication (auth.mode: jwt): the session is an HttpOnly cookie the browser sends by
 * itself, also on the EventSource. A 401 from any API call sends the page to
 * /login?next=<this page>. EventSource cannot see status codes, so when the stream is
 * closed for good the page asks /api/v1/auth/me whether the session is still valid. The
 * header shows who is signed in, from /api/v1/auth/me, which with auth.mode: none answers
 * the implicit local admin with via "none": then nothing about signing in is shown.
 * Every state-changing request goes through send(), which adds the X-CSRF-Token header
 * from the sysmon_csrf cookie (the server refuses a cookie-authenticated POST without it).
 */
(() => {
  'use strict';

  const API = '/api/v1';
  const LIVE_WINDOW = 300;
  const RANGES = {
    live: 300, '1h': 3600, '24h': 86400, '7d': 7 * 86400, '30d': 30 * 86400, '1y': 365 * 86400,
  };
  // Used when /api/v1/system has no thresholds for a key (issue 5 defaults).
  const FALLBACK_THRESHOLDS = {
    'cpu.percent': { warning: 80, critical: 90 },
    'memory.percent': { warning: 90 },
    'disk.percent': { warning: 85 },
  };
  const PROC_ROWS = 20;
  // Sorting by memory needs the server's memory ranking (the stream's rows are the top by
  // CPU); refetch it at most this often, and only while snapshots arrive.
  const MEMORY_SORT_REFRESH_MS = 5000;
  const ALERTS_REFRESH_MS = 30000;
  const HISTORY_REFRESH_MS = 60000;
  // A hidden tab gives its stream back after this long. Browsers allow only 6 HTTP/1.1
  // connections per server, and every open stream holds one, so background tabs would
  // otherwise starve the 7th tab; it also saves the server the work. Back in view, the
  // page reconnects and refills the live window from history.
  const HIDDEN_RELEASE_MS = 10000;
  const PALETTE = ['#3b82f6', '#f59e0b', '#10b981', '#ef4444', '#a855f7', '#ec4899', '#14b8a6', '#84cc16'];

  const CHARTS = [
    { id: 'cpu', metric: 'cpu', unit: 'pct', series: [
      ['percent', 'total'], ['user_percent', 'user'], ['system_percent', 'system'], ['iowait_percent', 'iowait']] },
    { id: 'cores', metric: 'cpu', unit: 'pct', perCore: true, series: [] },
    { id: 'memory', metric: 'memory', unit: 'bytes', series: [
      ['used_bytes', 'used'], ['cached_bytes', 'cached'], ['swap_used_bytes', 'swap used']] },
    { id: 'diskio', metric: 'disk', unit: 'rate', series: [
      ['read_bytes_per_sec', 'read'], ['write_bytes_per_sec', 'write']] },
    { id: 'network', metric: 'network', unit: 'rate', series: [
      ['bytes_recv_per_sec', 'in'], ['bytes_sent_per_sec', 'out']] },
  ];

  const state = {
    system: null,
    thresholds: {},
    range: 'live',
    sort: 'cpu',
    cores: [],
    interval: 1,
    serverOffset: 0, // server clock minus browser clock, seconds
    lastTs: 0,
    lastSnapshotAt: 0,
    latest: null,
    es: null,
    connected: false,
    everConnected: false,
    reconnectDelay: 1000,
    reconnectTimer: 0,
    historyGen: 0,
    historyReady: false,
    paused: false, // stream released while the tab is hidden
    hiddenTimer: 0,
    chartsBuilt: null, // promise: every chart, including per-core, exists
    pending: [], // snapshots that arrived while live history was loading
    memRows: null,
    memFetchedAt: 0,
    memFetching: false,
    alertsAvailable: true,
    firstChartMarked: false,
    leaving: false, // on the way to /login: stop reconnecting and fetching
    probing: false, // an /auth/me check after a stream error is in flight
  };

  const $ = (sel, root = document) => root.querySelector(sel);

  // ---------- formatting ----------
  const isNum = (v) => typeof v === 'number' && Number.isFinite(v);
  const num = (v) => (isNum(v) ? v : null);
  const DASH = '\u2014';

  function fmtPct(v) {
    return isNum(v) ? `${v.toFixed(1)}%` : DASH;
  }
  function scaled(v, base, units) {
    let i = 0;
    let x = Math.abs(v);
    while (x >= base && i < units.length - 1) { x /= base; i += 1; }
    const digits = x >= 100 || i === 0 ? 0 : 1;
    return `${(Math.sign(v) * x).toFixed(digits)} ${units[i]}`;
  }
  // Memory and sizes are binary (MiB/GiB); transfer rates are decimal (KB/s, MB/s).
  function fmtBytes(v) {
    return isNum(v) ? scaled(v, 1024, ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB']) : DASH;
  }
  function fmtRate(v) {
    return isNum(v) ? scaled(v, 1000, ['B/s', 'KB/s', 'MB/s', 'GB/s', 'TB/s']) : DASH;
  }
  function fmtDuration(s) {
    if (!isNum(s) || s < 0) return DASH;
    const d = Math.floor(s / 86400);
    const h = Math.floor((s % 86400) / 3600);
    const m = Math.floor((s % 3600) / 60);
    if (d > 0) return `${d} d ${h} h`;
    if (h > 0) return `${h} h ${m} min`;
    return `${m} min`;
  }
  function fmtClock(ts) {
    return isNum(ts) ? new Date(ts * 1000).toLocaleTimeString() : DASH;
  }
  function fmtDateTime(ts) {
    return isNum(ts) ? new Date(ts * 1000).toLocaleString() : DASH;
  }
  const FORMATTERS = { pct: fmtPct, bytes: fmtBytes, rate: fmtRate };

  // ---------- HTTP ----------
  class HttpError extends Error {
    constructor(status, url) { super(`${status} ${url}`); this.status = status; }
  }
  async function getJSON(url) {
    const resp = await fetch(url, { headers: { Accept: 'application/json' }, cache: 'no-store' });
    if (resp.status === 401) toLogin();
    if (!resp.ok) throw new HttpError(resp.status, url);
    return resp.json();
  }

  // ---------- session ----------
  const CSRF_COOKIE = 'sysmon_csrf';

  // Not signed in, or the session ended (expired, signed out elsewhere, password changed):
  // go to the login page, which comes back here after signing in.
  function toLogin() {
    if (state.leaving) return;
    state.leaving = true;
    window.clearTimeout(state.reconnectTimer);
    if (state.es) { state.es.close(); state.es = null; }
    const here = window.location.pathname + window.location.search + window.location.hash;
    window.location.replace(`/login?expired=1&next=${encodeURIComponent(here)}`);
  }

  function csrfToken() {
    for (const part of document.cookie.split(';')) {
      const eq = part.indexOf('=');
      if (eq > 0 && part.slice(0, eq).trim() === CSRF_COOKIE) return decodeURIComponent(part.slice(eq + 1).trim());
    }
    return '';
  }

  // Every POST/PUT/PATCH/DELETE goes through here: the X-CSRF-Token header proves the
  // request comes from a page of this origin (only such a page can read the cookie).
  async function send(method, url, body) {
    const headers = { Accept: 'application/json' };
    const token = csrfToken();
    if (token) headers['X-CSRF-Token'] = token;
    const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const resp = await fetch(url, init);
    if (resp.status === 401) toLogin();
    return resp;
  }

  // After the stream closed: a 401 closes an EventSource exactly like a 502 does, and
  // only another request can tell them apart. A failed fetch means the server is away,
  // which the reconnect loop handles.
  async function checkSession() {
    if (state.probing || state.leaving) return;
    state.probing = true;
    try {
      const resp = await fetch(`${API}/auth/me`, { headers: { Accept: 'application/json' }, cache: 'no-store' });
      if (resp.status === 401) toLogin();
    } catch (err) {
      // unreachable: keep reconnecting
    } finally {
      state.probing = false;
    }
  }

  function renderAccount(me) {
    const box = $('#account');
    const on = Boolean(me && me.via && me.via !== 'none');
    document.documentElement.dataset.auth = on ? 'on' : 'off';
    box.hidden = !on;
    if (!on) return;
    $('#user-name').textContent = me.name || '';
    const role = $('#user-role');
    role.textContent = me.role || '';
    role.dataset.role = me.role || '';
  }

  // Who is signed in. 401 goes to the login page (getJSON); 404 is a server without
  // the auth API (nothing to show); any other failure leaves the header as it is.
  async function loadMe() {
    try {
      renderAccount(await getJSON(`${API}/auth/me`));
    } catch (err) {
      if (err instanceof HttpError && err.status === 404) renderAccount(null);
    }
  }

  async function signOut() {
    const btn = $('#signout');
    btn.disabled = true;
    let ok = false;
    try {
      const resp = await send('POST', `${API}/auth/logout`);
      ok = resp.ok || resp.status === 401;
    } catch (err) {
      ok = false;
    }
    if (!ok) {
      btn.disabled = false;
      const notice = $('#notice');
      notice.textContent = 'Could not sign out: the server did not answer. Try again.';
      notice.hidden = false;
      return;
    }
    if (state.leaving) return;
    state.leaving = true;
    window.clearTimeout(state.reconnectTimer);
    if (state.es) { state.es.close(); state.es = null; }
    window.location.replace('/login?signed_out=1');
  }

  // ---------- thresholds ----------
  function threshold(key) {
    const t = (state.thresholds && state.thresholds[key]) || FALLBACK_THRESHOLDS[key];
    return t || null;
  }
  function levelFor(key, v) {
    const t = threshold(key);
    if (!t || !isNum(v)) return 'ok';
    if (isNum(t.critical) && v >= t.critical) return 'critical';
    if (isNum(t.warning) && v >= t.warning) return 'warning';
    return 'ok';
  }

  // ---------- cards ----------
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

  function renderCards(snap) {
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
      setCard(card, {
        value: fmtPct(d.percent),
        detail: isNum(d.used_bytes) && isNum(d.total_bytes)
          ? `${fmtBytes(d.used_bytes)} of ${fmtBytes(d.total_bytes)}` : '',
        level: levelFor('disk.percent', d.percent), bar: d.percent,
      });
    }
    for (const card of document.querySelectorAll('.card.mount')) {
      if (!seen.has(card.id)) card.remove();
    }
  }

  function renderHeader(snap) {
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

  function renderSystem(sys) {
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

  // ---------- processes ----------
  function renderProcesses(rows) {
    const key = state.sort === 'memory' ? 'memory_percent' : 'cpu_percent';
    const sorted = rows.slice().sort((a, b) => (num(b[key]) || 0) - (num(a[key]) || 0)).slice(0, PROC_ROWS);
    const tbody = $('#procs tbody');
    while (tbody.rows.length > sorted.length) tbody.deleteRow(-1);
    while (tbody.rows.length < sorted.length) {
      const tr = tbody.insertRow(-1);
      for (let i = 0; i < 8; i += 1) tr.insertCell(-1);
      const cls = ['num', '', 'opt', 'num', 'num', 'num opt', 'opt', 'num opt'];
      cls.forEach((c, i) => { if (c) tr.cells[i].className = c; });
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
    $('#procs-count').textContent = sorted.length ? `top ${sorted.length} by ${state.sort === 'memory' ? 'memory' : 'CPU'}` : 'no process data';
  }

  async function refreshMemoryRows(force) {
    if (state.memFetching) return;
    if (!force && Date.now() - state.memFetchedAt < MEMORY_SORT_REFRESH_MS) return;
    state.memFetching = true;
    try {
      const data = await getJSON(`${API}/metrics/processes?limit=${PROC_ROWS}&sort=memory`);
      state.memRows = data.processes || [];
    } catch (err) {
      // Fall back to sorting the stream's rows; the next snapshot retries.
      state.memRows = null;
    } finally {
      state.memFetchedAt = Date.now();
      state.memFetching = false;
    }
    if (state.sort === 'memory') renderProcesses(state.memRows || (state.latest && state.latest.processes) || []);
  }

  function updateProcesses(snap) {
    if (state.sort === 'memory') {
      refreshMemoryRows(false);
      renderProcesses(state.memRows || snap.processes || []);
    } else {
      renderProcesses(snap.processes || []);
    }
  }

  function setSort(sort) {
    state.sort = sort;
    for (const btn of document.querySelectorAll('#procs button[data-sort]')) {
      btn.closest('th').setAttribute('aria-sort', btn.dataset.sort === sort ? 'descending' : 'none');
    }
    if (sort === 'memory') {
      renderProcesses((state.latest && state.latest.processes) || []);
      refreshMemoryRows(true);
    } else if (state.latest) {
      renderProcesses(state.latest.processes || []);
    }
  }

  // ---------- alerts ----------
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
  async function loadAlerts() {
    const section = $('#alerts');
    let active;
    try {
      active = await getJSON(`${API}/alerts`);
    } catch (err) {
      // 404 until the alerts API exists, 503 when alerting is disabled: hide the panel and
      // stop asking until a reconnect.
      if (err instanceof HttpError && (err.status === 404 || err.status === 503)) {
        state.alertsAvailable = false;
        section.hidden = true;
      }
      return;
    }
    state.alertsAvailable = true;
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

  // ---------- charts ----------
  const charts = {};

  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  function coreColor(i, n) {
    if (n <= PALETTE.length) return PALETTE[i];
    return `hsl(${Math.round((i * 360) / n)}, 65%, 55%)`;
  }

  // Binary steps (256 MiB, 512 MiB, 1 GiB, ...) so memory ticks read as round numbers.
  const BINARY_INCRS = [];
  for (let k = 0; k <= 5; k += 1) {
    for (const m of [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]) BINARY_INCRS.push(m * 1024 ** k);
  }

  const TIME_FMT = {
    sec: new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' }),
    min: new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' }),
    dayMin: new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' }),
    day: new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' }),
  };
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
  // recomputed every time, not only when the legend is empty.
  function showLatestInLegend(u) {
    if (u.cursor.left !== undefined && u.cursor.left >= 0) return; // hovering (or synced)
    const xs = u.data[0];
    if (!xs || !xs.length) return;
    let idx = xs.length - 1;
    while (idx > 0 && u.data.slice(1).every((s) => s[idx] === null || s[idx] === undefined)) idx -= 1;
    u.setLegend({ idx }, false);
  }

  function chartOptions(def, width) {
    const fmt = FORMATTERS[def.unit];
    const axisColor = cssVar('--muted');
    const gridColor = cssVar('--grid');
    const labels = def.perCore ? state.cores.map((c) => `core ${c}`) : def.series.map((s) => s[1]);
    const series = [{ value: (u, v) => (v === null ? DASH : fmtDateTime(v)) }];
    labels.forEach((label, i) => {
      const color = def.perCore ? coreColor(i, labels.length) : PALETTE[i % PALETTE.length];
      series.push({
        label,
        stroke: color,
        width: i === 0 && !def.perCore ? 2 : 1.25,
        fill: i === 0 && !def.perCore ? `${color}22` : undefined,
        value: (u, v) => (v === null || v === undefined ? DASH : fmt(v)),
        points: { show: false },
      });
    });
    const yAxis = {
      stroke: axisColor,
      grid: { stroke: gridColor, width: 1 },
      ticks: { stroke: gridColor, width: 1 },
      size: def.unit === 'pct' ? 48 : 74,
      values: (u, splits) => splits.map((v) => (def.unit === 'pct' ? `${v}%` : fmt(v))),
    };
    if (def.unit === 'bytes') yAxis.incrs = BINARY_INCRS;
    const yRange = def.unit === 'pct'
      ? [0, 100]
      : (u, min, max) => [0, max > 0 ? max * 1.1 : 1];
    return {
      width,
      height: window.matchMedia('(max-width: 600px)').matches ? 170 : 210,
      series,
      cursor: { sync: { key: 'sysmon' }, points: { size: 6 } },
      legend: { live: true },
      scales: {
        x: {
          time: true,
          range: (u, min, max) => {
            if (state.range === 'live' && state.lastTs) return [state.lastTs - LIVE_WINDOW, state.lastTs];
            return [min, max];
          },
        },
        y: { range: yRange },
      },
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
    };
  }

  function emptyData(def) {
    const n = def.perCore ? state.cores.length : def.series.length;
    const data = [[]];
    for (let i = 0; i < n; i += 1) data.push([]);
    return data;
  }

  function buildChart(def) {
    const fig = document.getElementById(`chart-${def.id}`);
    const plot = $('.plot', fig);
    const old = charts[def.id];
    const data = old ? old.data : emptyData(def);
    if (old) old.u.destroy();
    plot.replaceChildren();
    const width = Math.max(plot.clientWidth, 200);
    const u = new uPlot(chartOptions(def, width), data, plot);
    charts[def.id] = { def, u, data, fig, dirty: false };
    if (!old) observeResize(charts[def.id]);
  }

  let resizer = null;
  function observeResize(c) {
    if (!resizer) {
      resizer = new ResizeObserver(() => {
        for (const x of Object.values(charts)) {
          const w = Math.max($('.plot', x.fig).clientWidth, 200);
          if (Math.abs(w - x.u.width) > 1) x.u.setSize({ width: w, height: x.u.height });
        }
      });
      // Colours come from CSS variables, which change with the OS theme.
      window.matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => {
        for (const x of Object.values(charts)) buildChart(x.def);
      });
    }
    resizer.observe($('.plot', c.fig));
  }

  function countPoints(data) {
    let n = 0;
    for (let s = 1; s < data.length; s += 1) for (const v of data[s]) if (v !== null && v !== undefined) n += 1;
    return n;
  }

  function drawChart(c) {
    if (document.hidden) { c.dirty = true; return; }
    c.dirty = false;
    c.u.setData(c.data);
    const points = countPoints(c.data);
    c.fig.dataset.points = String(points);
    $('.empty', c.fig).hidden = points > 0;
    if (points > 0 && !state.firstChartMarked) {
      state.firstChartMarked = true;
      performance.mark('sysmon:first-chart');
    }
  }

  function snapshotRow(def, snap) {
    const m = snap.metrics || {};
    if (def.perCore) {
      const cores = (m.cpu && m.cpu.core) || {};
      return state.cores.map((c) => num(cores[c] && cores[c].percent));
    }
    const total = (m[def.metric] && m[def.metric].total) || {};
    return def.series.map(([f]) => num(total[f]));
  }

  function appendSnapshot(snap) {
    const ts = snap.timestamp;
    for (const c of Object.values(charts)) {
      const d = c.data;
      const last = d[0].length ? d[0][d[0].length - 1] : null;
      if (last !== null && ts <= last) continue;
      const row = snapshotRow(c.def, snap);
      // A missed stretch (server down, tab asleep) becomes a gap rather than a straight line.
      if (last !== null && ts - last > Math.max(5 * state.interval, 5)) {
        d[0].push(last + state.interval);
        for (let s = 1; s < d.length; s += 1) d[s].push(null);
      }
      d[0].push(ts);
      for (let s = 1; s < d.length; s += 1) d[s].push(row[s - 1] === undefined ? null : row[s - 1]);
      let drop = 0;
      while (drop < d[0].length && d[0][drop] < ts - LIVE_WINDOW) drop += 1;
      if (drop) for (const arr of d) arr.splice(0, drop);
      drawChart(c);
    }
  }

  async function mapLimit(items, limit, fn) {
    const out = new Array(items.length);
    let next = 0;
    async function worker() {
      while (next < items.length) { const i = next; next += 1; out[i] = await fn(items[i]); }
    }
    await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
    return out;
  }

  function fieldsOf(resp, names) {
    const fields = (resp && resp.fields) || {};
    const n = (resp && resp.timestamps && resp.timestamps.length) || 0;
    return names.map((f) => (Array.isArray(fields[f]) ? fields[f].map(num) : new Array(n).fill(null)));
  }

  function nowServer() {
    return Date.now() / 1000 + state.serverOffset;
  }

  function applyData(c, data, range) {
    c.data = data;
    c.fig.removeAttribute('aria-busy');
    if (range === 'live' && data[0].length) state.lastTs = Math.max(state.lastTs, data[0][data[0].length - 1]);
    drawChart(c);
  }

  function showResolution(cpu) {
    const res = $('#resolution');
    if (!cpu) { res.textContent = 'history unavailable'; res.dataset.resolution = ''; return; }
    const st = cpu.step_seconds;
    const step = isNum(st) ? ` (${st >= 60 ? `${Math.round(st / 60)} min` : `${st} s`})` : '';
    res.textContent = `resolution ${cpu.resolution || '?'}${step} \u00b7 ${cpu.agg || 'mean'}`;
    res.dataset.resolution = cpu.resolution || '';
  }

  // Each chart is drawn as soon as its own request answers; live points that arrive
  // meanwhile wait in state.pending and are appended once every chart has its history.
  async function loadHistory() {
    const gen = ++state.historyGen;
    const range = state.range;
    state.historyReady = false;
    for (const c of Object.values(charts)) c.fig.setAttribute('aria-busy', 'true');
    const end = nowServer();
    const start = end - RANGES[range];
    const q = `start=${start.toFixed(3)}&end=${end.toFixed(3)}&resolution=auto`;
    let cpuResp = null;
    const updated = new Set();
    const totals = ['cpu', 'memory', 'disk', 'network'].map(async (metric) => {
      const r = await getJSON(`${API}/metrics/${metric}?${q}`);
      if (gen !== state.historyGen) return;
      if (metric === 'cpu') cpuResp = r;
      for (const c of Object.values(charts)) {
        if (c.def.metric !== metric || c.def.perCore) continue;
        applyData(c, [Array.from(r.timestamps || []), ...fieldsOf(r, c.def.series.map((x) => x[0]))], range);
        updated.add(c.def.id);
      }
    });
    const perCore = (async () => {
      await state.chartsBuilt;
      const c = charts.cores;
      if (!c || gen !== state.historyGen) return;
      const rs = await mapLimit(state.cores, 6, (core) => getJSON(`${API}/metrics/cpu?${q}&core=${encodeURIComponent(core)}`));
      if (gen !== state.historyGen) return;
      const tables = rs.map((r) => [r.timestamps || [], ...fieldsOf(r, ['percent'])]);
      let data = emptyData(c.def);
      if (tables.length === 1) data = tables[0];
      else if (tables.length > 1) data = uPlot.join(tables).map((arr) => Array.from(arr, (v) => (v === undefined ? null : v)));
      applyData(c, data, range);
      updated.add(c.def.id);
    })();
    const outcome = await Promise.allSettled([...totals, perCore]);
    if (gen !== state.historyGen) return;
    // A chart whose request failed must not keep showing the previous range's data.
    for (const c of Object.values(charts)) {
      if (!updated.has(c.def.id)) applyData(c, emptyData(c.def), range);
    }
    showResolution(outcome.some((o) => o.status === 'rejected') && !cpuResp ? null : cpuResp);
    state.historyReady = true;
    flushPending();
  }

  function flushPending() {
    const pending = state.pending;
    state.pending = [];
    if (state.range !== 'live') return;
    for (const snap of pending) appendSnapshot(snap);
  }

  function setRange(range) {
    if (!(range in RANGES)) return;
    state.range = range;
    for (const btn of document.querySelectorAll('.ranges button')) {
      btn.setAttribute('aria-pressed', String(btn.dataset.range === range));
    }
    state.pending = [];
    loadHistory();
  }

  // ---------- snapshots and the stream ----------
  function onSnapshot(snap) {
    if (!snap || !isNum(snap.timestamp)) return;
    state.serverOffset = snap.timestamp - Date.now() / 1000;
    if (state.latest && snap.timestamp > state.latest.timestamp) {
      state.interval = Math.max(1, Math.min(60, Math.round(snap.timestamp - state.latest.timestamp))) || state.interval;
    }
    state.latest = snap;
    state.lastSnapshotAt = Date.now();
    if (state.range === 'live') {
      state.lastTs = Math.max(state.lastTs, snap.timestamp);
      if (state.historyReady) appendSnapshot(snap);
      else state.pending.push(snap);
    }
    if (document.hidden) return; // rendered on visibilitychange
    render(snap);
  }

  function render(snap) {
    renderHeader(snap);
    renderCards(snap);
    updateProcesses(snap);
  }

  function setConn(kind) {
    const badge = $('#conn');
    badge.dataset.state = kind;
    const text = { live: 'live', reconnecting: 'reconnecting\u2026', paused: 'paused' };
    badge.textContent = text[kind] || 'connecting\u2026';
    badge.title = kind === 'live' ? 'Receiving live updates' : 'Waiting for the server; the page reconnects by itself';
  }

  function scheduleReconnect() {
    if (state.reconnectTimer || state.paused || state.leaving) return;
    const delay = state.reconnectDelay;
    state.reconnectDelay = Math.min(state.reconnectDelay * 2, 10000);
    state.reconnectTimer = window.setTimeout(() => { state.reconnectTimer = 0; connect(); }, delay);
  }

  function connect() {
    if (state.leaving) return;
    if (state.es) state.es.close();
    const es = new EventSource(`${API}/stream`);
    state.es = es;
    es.addEventListener('snapshot', (ev) => {
      let snap;
      try { snap = JSON.parse(ev.data); } catch (err) { return; }
      if (!state.connected) onReconnected();
      onSnapshot(snap);
    });
    es.addEventListener('alert', () => { if (state.alertsAvailable) loadAlerts(); });
    es.onerror = () => {
      if (es !== state.es) return;
      if (state.connected || state.everConnected) setConn('reconnecting');
      state.connected = false;
      // The browser retries network errors itself; an HTTP error (a 502 from a proxy
      // during a restart, or a 401 when the session ended) closes the stream for good:
      // find out which, and retry ourselves with backoff.
      if (es.readyState === EventSource.CLOSED) {
        checkSession();
        scheduleReconnect();
      }
    };
  }

  // First snapshot on a (re)opened stream: the server may have restarted, so reload what
  // can have changed and refill the live window with what the server stored meanwhile.
  function onReconnected() {
    const wasConnected = state.everConnected;
    state.connected = true;
    state.everConnected = true;
    state.reconnectDelay = 1000;
    setConn('live');
    if (wasConnected) {
      loadSystem();
      loadMe();
      state.alertsAvailable = true;
      loadAlerts();
      if (state.range === 'live') { state.pending = []; loadHistory(); }
    }
  }

  // A stream can die silently (laptop sleep, a proxy that drops idle connections): if no
  // snapshot arrives for several intervals, reopen it. This costs the server nothing.
  function watchdog() {
    if (!state.lastSnapshotAt) return;
    const quiet = Date.now() - state.lastSnapshotAt;
    if (quiet > Math.max(15000, 5000 * state.interval) && state.connected) {
      state.connected = false;
      setConn('reconnecting');
      connect();
    }
  }

  function onVisibility() {
    if (document.hidden) {
      window.clearTimeout(state.hiddenTimer);
      state.hiddenTimer = window.setTimeout(() => {
        if (!document.hidden || !state.es) return;
        state.es.close();
        state.es = null;
        state.connected = false;
        state.paused = true;
        window.clearTimeout(state.reconnectTimer);
        state.reconnectTimer = 0;
        setConn('paused');
      }, HIDDEN_RELEASE_MS);
      return;
    }
    window.clearTimeout(state.hiddenTimer);
    if (state.paused) {
      state.paused = false;
      setConn('reconnecting');
      connect(); // its first snapshot reloads history (onReconnected)
    }
    for (const c of Object.values(charts)) if (c.dirty) drawChart(c);
    if (state.latest) render(state.latest);
  }

  async function loadSystem() {
    try {
      const sys = await getJSON(`${API}/system`);
      state.system = sys;
      state.thresholds = sys.thresholds || {};
      renderSystem(sys);
      return sys;
    } catch (err) {
      return null;
    }
  }

  function coresFrom(sys, snap) {
    const fromSnap = snap && snap.metrics && snap.metrics.cpu && snap.metrics.cpu.core;
    if (fromSnap && Object.keys(fromSnap).length) {
      return Object.keys(fromSnap).sort((a, b) => Number(a) - Number(b));
    }
    const n = sys && isNum(sys.cpu_count) ? sys.cpu_count : 0;
    return Array.from({ length: n }, (_, i) => String(i));
  }

  async function init() {
    performance.mark('sysmon:init');
    if (typeof uPlot === 'undefined') {
      const notice = $('#notice');
      notice.textContent = 'Chart library missing: run `npm ci` in the sysmon directory.';
      notice.dataset.kind = 'sticky';
      notice.hidden = false;
    }
    for (const btn of document.querySelectorAll('.ranges button')) {
      btn.addEventListener('click', () => setRange(btn.dataset.range));
    }
    for (const btn of document.querySelectorAll('#procs button[data-sort]')) {
      btn.addEventListener('click', () => setSort(btn.dataset.sort));
    }
    document.addEventListener('visibilitychange', onVisibility);
    $('#signout').addEventListener('click', signOut);

    loadMe();
    connect();
    const sysP = loadSystem();
    const currentP = getJSON(`${API}/metrics/current`).catch(() => null);
    let builtCharts;
    state.chartsBuilt = new Promise((resolve) => { builtCharts = resolve; });
    let history = Promise.resolve();
    if (typeof uPlot !== 'undefined') {
      // Ask for history first, then build the totals charts while the requests run (the
      // answers are applied asynchronously, after this). The per-core chart waits for the
      // list of cores.
      history = loadHistory();
      for (const def of CHARTS) if (!def.perCore) buildChart(def);
    }
    const [sys, current] = await Promise.all([sysP, currentP]);
    if (current && !state.latest) onSnapshot(current);
    state.cores = coresFrom(sys, state.latest || current);
    if (sys) renderSystem(sys);
    if (typeof uPlot !== 'undefined') buildChart(CHARTS.find((d) => d.perCore));
    builtCharts();
    await history;
    loadAlerts();
    window.setInterval(watchdog, 5000);
    window.setInterval(() => {
      if (!document.hidden && state.alertsAvailable && state.connected) loadAlerts();
    }, ALERTS_REFRESH_MS);
    // Fixed ranges are not fed by the stream; refresh them gently while visible.
    window.setInterval(() => {
      if (!document.hidden && state.range !== 'live' && state.connected) loadHistory();
    }, HISTORY_REFRESH_MS);
  }

  init();
})();
