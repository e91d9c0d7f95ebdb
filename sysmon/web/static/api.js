/* Talking to the server: JSON GETs, CSRF-protected writes, and the live stream.
 *
 * One EventSource on /api/v1/stream pushes a snapshot per collection tick. After a
 * disconnect the stream reconnects with backoff; its first snapshot after that is
 * reported as "reconnected" so the page reloads what a server restart may have changed.
 * A stream can also die silently (laptop sleep, a proxy dropping idle connections): a
 * watchdog reopens it when no snapshot came for several intervals.
 *
 * Authentication (auth.mode: jwt): the session is an HttpOnly cookie the browser sends by
 * itself, also on the EventSource. A 401 from any API call sends the page to
 * /login?next=<this page>. EventSource cannot see status codes, so when the stream is
 * closed for good the page asks /api/v1/auth/me whether the session is still valid.
 */

export const API = '/api/v1';
const CSRF_COOKIE = 'sysmon_csrf';
// A hidden tab gives its stream back after this long. Browsers allow only 6 HTTP/1.1
// connections per server, and every open stream holds one, so background tabs would
// otherwise starve the 7th tab; it also saves the server the work.
const HIDDEN_RELEASE_MS = 10000;

export class HttpError extends Error {
  constructor(status, url) { super(`${status} ${url}`); this.status = status; }
}

let leaving = false; // on the way to /login: stop reconnecting and fetching
let stream = null;

export function isLeaving() { return leaving; }

// Stop everything and go to another page of ours (login, or signed out).
export function leave(url) {
  if (leaving) return;
  leaving = true;
  if (stream) stream.close();
  window.location.replace(url);
}

// Not signed in, or the session ended: go to the login page, which comes back here.
export function toLogin() {
  const here = window.location.pathname + window.location.search + window.location.hash;
  leave(`/login?expired=1&next=${encodeURIComponent(here)}`);
}

export async function getJSON(url) {
  const resp = await fetch(url, { headers: { Accept: 'application/json' }, cache: 'no-store' });
  if (resp.status === 401) toLogin();
  if (!resp.ok) throw new HttpError(resp.status, url);
  return resp.json();
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
export async function send(method, url, body) {
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

// Run fn over items with at most `limit` requests in flight (the browser's 6-connection
// limit is shared with the stream).
export async function mapLimit(items, limit, fn) {
  const out = new Array(items.length);
  let next = 0;
  async function worker() {
    while (next < items.length) { const i = next; next += 1; out[i] = await fn(items[i]); }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/* The live stream. handlers: snapshot(snap), alert(), state('live'|'reconnecting'|'paused'),
 * reconnected() (first snapshot on a stream opened after an earlier one). */
export class LiveStream {
  constructor(handlers) {
    this.h = handlers;
    this.es = null;
    this.connected = false;
    this.everConnected = false;
    this.delay = 1000;
    this.reconnectTimer = 0;
    this.hiddenTimer = 0;
    this.paused = false;
    this.probing = false;
    this.lastAt = 0;
    this.interval = 1;
    stream = this;
    document.addEventListener('visibilitychange', () => this.onVisibility());
    window.setInterval(() => this.watchdog(), 5000);
  }

  connect() {
    if (leaving) return;
    if (this.es) this.es.close();
    const es = new EventSource(`${API}/stream`);
    this.es = es;
    es.addEventListener('snapshot', (ev) => {
      let snap;
      try { snap = JSON.parse(ev.data); } catch (err) { return; }
      this.lastAt = Date.now();
      if (!this.connected) this.onOpened();
      this.h.snapshot(snap);
    });
    es.addEventListener('alert', () => this.h.alert());
    es.onerror = () => {
      if (es !== this.es) return;
      if (this.connected || this.everConnected) this.h.state('reconnecting');
      this.connected = false;
      // The browser retries network errors itself; an HTTP error (a 502 from a proxy
      // during a restart, or a 401 when the session ended) closes the stream for good:
      // find out which, and retry ourselves with backoff.
      if (es.readyState === EventSource.CLOSED) {
        this.checkSession();
        this.scheduleReconnect();
      }
    };
  }

  close() {
    window.clearTimeout(this.reconnectTimer);
    this.reconnectTimer = 0;
    if (this.es) { this.es.close(); this.es = null; }
    this.connected = false;
  }

  onOpened() {
    const again = this.everConnected;
    this.connected = true;
    this.everConnected = true;
    this.delay = 1000;
    this.h.state('live');
    if (again) this.h.reconnected();
  }

  scheduleReconnect() {
    if (this.reconnectTimer || this.paused || leaving) return;
    const delay = this.delay;
    this.delay = Math.min(this.delay * 2, 10000);
    this.reconnectTimer = window.setTimeout(() => { this.reconnectTimer = 0; this.connect(); }, delay);
  }

  // After the stream closed: a 401 closes an EventSource exactly like a 502 does, and
  // only another request can tell them apart. A failed fetch means the server is away,
  // which the reconnect loop handles.
  async checkSession() {
    if (this.probing || leaving) return;
    this.probing = true;
    try {
      const resp = await fetch(`${API}/auth/me`, { headers: { Accept: 'application/json' }, cache: 'no-store' });
      if (resp.status === 401) toLogin();
    } catch (err) {
      // unreachable: keep reconnecting
    } finally {
      this.probing = false;
    }
  }

  watchdog() {
    if (!this.lastAt) return;
    const quiet = Date.now() - this.lastAt;
    if (quiet > Math.max(15000, 5000 * this.interval) && this.connected) {
      this.connected = false;
      this.h.state('reconnecting');
      this.connect();
    }
  }

  onVisibility() {
    if (document.hidden) {
      window.clearTimeout(this.hiddenTimer);
      this.hiddenTimer = window.setTimeout(() => {
        if (!document.hidden || !this.es) return;
        this.close();
        this.paused = true;
        this.h.state('paused');
      }, HIDDEN_RELEASE_MS);
      return;
    }
    window.clearTimeout(this.hiddenTimer);
    if (this.paused) {
      this.paused = false;
      this.h.state('reconnecting');
      this.connect(); // its first snapshot reloads history (reconnected)
    }
  }
}
