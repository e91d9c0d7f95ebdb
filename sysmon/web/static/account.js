/* Who is signed in, and "Sign out". /api/v1/auth/me answers the implicit local admin with
 * via "none" when auth.mode is none: then nothing about signing in is shown. */

import { API, HttpError, getJSON, isLeaving, leave, send } from './api.js';
import { $ } from './state.js';

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

// 401 goes to the login page (getJSON); 404 is a server without the auth API (nothing
// to show); any other failure leaves the header as it is.
export async function loadMe() {
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
  if (!isLeaving()) leave('/login?signed_out=1');
}

export function initAccount() {
  $('#signout').addEventListener('click', signOut);
}
