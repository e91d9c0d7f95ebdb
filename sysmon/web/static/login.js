/* sysmon login page: plain JS, no build step, no inline script (the CSP allows none).
 *
 * POST /api/v1/auth/login with the user name and password as JSON. On 200 the server has
 * set the HttpOnly session cookie and the readable CSRF cookie; the page goes to `next`
 * (only a path on this origin: an open redirect would let a link send a freshly signed-in
 * user anywhere) or to the dashboard. Every failure is said in the form, next to the
 * fields: wrong credentials (401), too many attempts (429, with the wait from
 * Retry-After counted down and the button held until then), server unreachable (fetch
 * itself fails), or anything else with its status.
 */
(() => {
  'use strict';

  const API = '/api/v1';
  const CSRF_COOKIE = 'sysmon_csrf';
  const $ = (sel) => document.querySelector(sel);
  const form = $('#login');
  const user = $('#username');
  const password = $('#password');
  const submit = $('#login-submit');
  const error = $('#login-error');
  const status = $('#login-status');
  let waitTimer = 0;
  let waitUntil = 0;

  // The page to open after signing in: a path of this origin, never /login itself.
  function target() {
    const raw = new URLSearchParams(window.location.search).get('next');
    if (!raw) return '/';
    let url;
    try {
      url = new URL(raw, window.location.origin);
    } catch (err) {
      return '/';
    }
    if (url.origin !== window.location.origin || url.pathname === '/login') return '/';
    return url.pathname + url.search + url.hash;
  }

  function say(el, text) {
    el.textContent = text || '';
    el.hidden = !text;
  }

  function showError(text, field) {
    say(status, '');
    say(error, text);
    for (const input of [user, password]) input.removeAttribute('aria-invalid');
    if (field) {
      field.setAttribute('aria-invalid', 'true');
      field.focus();
    }
  }

  function busy(on) {
    submit.disabled = on || Date.now() < waitUntil;
    form.setAttribute('aria-busy', String(on));
    submit.textContent = on ? 'Signing in\u2026' : 'Sign in';
  }

  // 429: say how long, count it down, and keep the button off until then (another try
  // before that only costs another 429).
  function tooMany(seconds) {
    const wait = Number.isFinite(seconds) && seconds > 0 ? Math.ceil(seconds) : 60;
    waitUntil = Date.now() + wait * 1000;
    window.clearInterval(waitTimer);
    const tick = () => {
      const left = Math.ceil((waitUntil - Date.now()) / 1000);
      if (left <= 0) {
        window.clearInterval(waitTimer);
        waitTimer = 0;
        waitUntil = 0;
        submit.disabled = false;
        say(error, 'You can try again now.');
        error.dataset.kind = '';
        return;
      }
      error.dataset.kind = 'rate';
      error.dataset.retryAfter = String(left);
      say(error, `Too many sign-in attempts. Try again in ${left} s.`);
      submit.disabled = true;
    };
    say(status, '');
    for (const input of [user, password]) input.removeAttribute('aria-invalid');
    tick();
    waitTimer = window.setInterval(tick, 1000);
  }

  async function detailOf(resp) {
    try {
      const body = await resp.json();
      return body && typeof body.detail === 'string' ? body.detail : '';
    } catch (err) {
      return '';
    }
  }

  async function onSubmit(ev) {
    ev.preventDefault();
    if (submit.disabled) return;
    const username = user.value.trim();
    if (!username) { showError('Enter your user name.', user); return; }
    if (!password.value) { showError('Enter your password.', password); return; }
    busy(true);
    error.dataset.kind = '';
    let resp;
    try {
      resp = await fetch(`${API}/auth/login`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify({ username, password: password.value }),
        credentials: 'same-origin',
        cache: 'no-store',
      });
    } catch (err) {
      busy(false);
      error.dataset.kind = 'network';
      showError('Cannot reach the server. Check that sysmon is running, then try again.');
      return;
    }
    if (resp.ok) {
      // Read the answer before leaving, so the request ends rather than being aborted.
      await resp.json().catch(() => null);
      say(error, '');
      say(status, 'Signed in. Opening the dashboard\u2026');
      window.location.replace(target());
      return;
    }
    busy(false);
    if (resp.status === 401) {
      error.dataset.kind = 'credentials';
      password.value = '';
      showError('Wrong user name or password.', password);
    } else if (resp.status === 429) {
      tooMany(Number(resp.headers.get('Retry-After')));
    } else if (resp.status === 404) {
      // Authentication is off (auth.mode: none): there is nothing to sign in to.
      window.location.replace(target());
    } else if (resp.status === 422) {
      error.dataset.kind = 'input';
      showError('Enter a user name and a password.', user);
    } else {
      error.dataset.kind = 'server';
      const detail = await detailOf(resp);
      showError(`The server could not sign you in (${resp.status}${detail ? `: ${detail}` : ''}).`);
    }
  }

  // Already signed in (the CSRF cookie is there and /me accepts the session): go on.
  // Without the cookie there is no session to ask about, so no request at all.
  async function skipIfSignedIn() {
    if (!document.cookie.split(';').some((c) => c.trim().startsWith(`${CSRF_COOKIE}=`))) return;
    try {
      const resp = await fetch(`${API}/auth/me`, { headers: { Accept: 'application/json' }, cache: 'no-store' });
      if (resp.ok) window.location.replace(target());
    } catch (err) {
      // Unreachable: the form says so when it is used.
    }
  }

  const params = new URLSearchParams(window.location.search);
  form.addEventListener('submit', onSubmit);
  // Sent here because the session ended: asking /me again would only be refused again.
  if (params.has('signed_out')) say(status, 'You have signed out.');
  else if (params.has('expired')) say(status, 'Your session has ended. Sign in again.');
  else skipIfSignedIn();
})();
