// Hosted Embedded Signup page. No inline code (CSP); plain ES2017, no build step.
(() => {
  'use strict';

  const $ = (id) => document.getElementById(id);
  const connectBtn = $('connect');
  const retryBtn = $('retry');
  const statusEl = $('status');
  const resultEl = $('result');
  const returnLink = $('return-link');
  const selfSrc = document.currentScript ? document.currentScript.src : '';

  let cfg = {};
  try {
    cfg = JSON.parse($('edge-config').textContent) || {};
  } catch (e) {
    cfg = {};
  }

  const SDK_TIMEOUT_MS = 8000;
  const CANCEL_WAIT_MS = 1500;
  const FINISH_WAIT_MS = 10000;
  const REPORT_WAIT_MS = 1500;
  const TERMINAL = ['link_expired', 'link_deleted', 'link_completed', 'link_not_pending'];
  const MSG = {
    noMeta: 'This service has no Meta app configured yet, so WhatsApp can\'t be connected here. Please contact the company that sent you this link.',
    blocked: 'We couldn\'t load Facebook\'s sign-in. If you use an ad or tracker blocker, allow connect.facebook.net for this page and reload.',
    loading: 'Loading Facebook\'s sign-in…',
    opening: 'Opening Facebook…',
    waiting: 'Waiting for you to finish in the Facebook window…',
    connecting: 'Connecting your number…',
    redirecting: 'Connected! Taking you back…',
    done: 'Your WhatsApp number is connected. You can close this page.',
    network: 'We couldn\'t reach the server. Check your connection and try again.',
    generic: 'Something went wrong while connecting your number. Please try again.',
  };

  let sdkReady = false;
  let sdkFailed = false;
  let attempt = null; // state of the current click; replaced on every click

  const show = (el, on) => el.classList.toggle('hidden', !on);
  const setStatus = (text) => { statusEl.textContent = text || ''; };
  const setBusy = (busy) => { connectBtn.disabled = busy || !sdkReady; retryBtn.disabled = busy; };

  const setResult = (text, kind) => {
    resultEl.className = 'message ' + (kind || '');
    resultEl.setAttribute('role', kind === 'error' ? 'alert' : 'status');
    resultEl.textContent = text;
    show(resultEl, !!text);
  };

  // The server renders the sandbox banner; add one if it is missing, never leave it out.
  if (cfg.sandbox && !document.querySelector('.sandbox-banner')) {
    const b = document.createElement('div');
    b.className = 'sandbox-banner';
    b.textContent = 'Sandbox — no real WhatsApp account is connected';
    document.body.insertBefore(b, document.body.firstChild);
  }

  // ---- SDK loading -------------------------------------------------------

  const onSdkReady = () => {
    if (sdkReady || !cfg.metaConfigured) return;
    sdkReady = true;
    if (sdkFailed) { sdkFailed = false; setResult(''); } // slow load after the timeout
    if (!attempt) setStatus('');
    setBusy(false);
  };

  const onSdkFailed = () => {
    if (sdkReady || sdkFailed || !cfg.metaConfigured) return;
    sdkFailed = true;
    setStatus('');
    setResult(MSG.blocked, 'error');
    connectBtn.disabled = true;
  };

  window.fbAsyncInit = () => {
    try {
      window.FB.init({ appId: cfg.appId, autoLogAppEvents: true, xfbml: true, version: cfg.graphVersion });
    } catch (e) {
      onSdkFailed();
      return;
    }
    onSdkReady();
  };

  // Error events of <script> elements do not bubble; catch the SDK's in the capture phase.
  window.addEventListener('error', (e) => {
    const t = e.target;
    if (t && t.tagName === 'SCRIPT' && t.src && t.src !== selfSrc) onSdkFailed();
  }, true);

  const boot = () => {
    if (!cfg.metaConfigured) {
      connectBtn.disabled = true;
      setResult(MSG.noMeta, 'notice');
      return;
    }
    if (!sdkReady && !sdkFailed) setStatus(MSG.loading);
    setTimeout(() => { if (!sdkReady) onSdkFailed(); }, SDK_TIMEOUT_MS);
  };

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', boot);
  else boot();

  // The SDK may have run before us (cached, reordered): initialise now.
  if (window.FB && typeof window.FB.init === 'function') window.fbAsyncInit();

  // ---- One signup attempt ------------------------------------------------

  const clearTimers = (a) => { a.timers.forEach(clearTimeout); a.timers = []; };
  const later = (a, ms, fn) => { a.timers.push(setTimeout(() => { if (a === attempt && !a.posted) fn(); }, ms)); };

  // Embedded Signup v4: the configuration picks the flow; prefill goes in `setup`, and
  // only a link that welcomes WhatsApp Business app numbers asks for coexistence.
  const extras = () => {
    const x = { setup: cfg.prefill || {} };
    if (cfg.businessApp) x.featureType = 'whatsapp_business_app_onboarding';
    return x;
  };

  const start = () => {
    if (!sdkReady || (attempt && attempt.posted && !attempt.settled)) return;
    const refocus = document.activeElement === retryBtn;
    if (attempt) clearTimers(attempt);
    const a = { login: false, code: null, finish: null, failure: null, posted: false, settled: false, timers: [] };
    attempt = a;
    setResult('');
    show(retryBtn, false);
    show(returnLink, false);
    show(connectBtn, true);
    setBusy(false);
    if (refocus) connectBtn.focus();
    setStatus(MSG.opening);
    try {
      // Must stay synchronous inside the click: browsers block popups after an await.
      window.FB.login((resp) => onLogin(a, resp), {
        config_id: cfg.configId,
        response_type: 'code',
        override_default_response_type: true,
        extras: extras(),
      });
    } catch (e) {
      attempt = null;
      fail({ message: MSG.generic }, true);
      return;
    }
    setTimeout(() => { if (a === attempt && !a.posted && !a.login) setStatus(MSG.waiting); }, 600);
  };

  const onLogin = (a, resp) => {
    if (a !== attempt || a.posted || a.login) return;
    a.login = true;
    const code = resp && resp.authResponse && resp.authResponse.code;
    if (code) {
      a.code = String(code);
      if (a.failure) return post(a, { error: a.failure });
      if (a.finish) return postFinish(a);
      setStatus(MSG.connecting);
      setBusy(true);
      later(a, FINISH_WAIT_MS, () => post(a, { error: { code: 'missing_session_info' } }));
      return;
    }
    if (a.failure) return post(a, { error: a.failure });
    if (a.finish) return post(a, { error: { code: 'missing_code' } });
    later(a, CANCEL_WAIT_MS, () => post(a, { error: a.failure || { code: 'window_closed' } }));
  };

  const metaId = (v) => (v != null && /^[0-9]{1,32}$/.test(String(v)) ? String(v) : null);
  const wabaOf = (d) => metaId(d.waba_id) || (Array.isArray(d.waba_ids) ? metaId(d.waba_ids[0]) : null);

  // What Meta's session message said, sent as soon as it arrives (before the code, which
  // may never come if the tab closes): the server can then recover the signup.
  const reportSession = (ev, d) => {
    const wabaId = wabaOf(d);
    if (!wabaId || !cfg.sessionUrl) return;
    const body = { event: ev, wabaId: wabaId };
    if (metaId(d.phone_number_id)) body.phoneNumberId = metaId(d.phone_number_id);
    if (metaId(d.business_id)) body.businessId = metaId(d.business_id);
    const session = String(d.session_id || '');
    if (/^[A-Za-z0-9._-]{1,128}$/.test(session)) body.sessionId = session;
    try {
      return fetch(cfg.sessionUrl, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        credentials: 'same-origin',
        keepalive: true,
        body: JSON.stringify(body),
      }).catch(() => {});
    } catch (e) { /* the callback still carries everything */ }
  };

  const postFinish = (a) => {
    if (a.finishing) return;
    a.finishing = true;
    clearTimers(a);
    const d = a.finish.data;
    const wabaId = wabaOf(d);
    if (!wabaId) return post(a, { error: { code: 'missing_session_info' } });
    const body = { code: a.code, wabaId: wabaId };
    if (metaId(d.phone_number_id)) body.phoneNumberId = metaId(d.phone_number_id);
    if (metaId(d.business_id)) body.businessId = metaId(d.business_id);
    body.event = a.finish.event;
    // The session report lands first (the server keeps it only on a pending link), but a
    // slow one never holds the code back for long: Meta's code lives 30 seconds.
    const wait = new Promise((resolve) => setTimeout(resolve, REPORT_WAIT_MS));
    Promise.race([a.report || Promise.resolve(), wait]).then(() => post(a, body));
  };

  // ---- Session messages from Meta's popup ---------------------------------

  const trustedOrigin = (origin) => {
    if (!origin || origin === 'null') return false;
    if (cfg.sdkOrigin && origin === cfg.sdkOrigin) return true;
    // The sandbox's popup is served by this service, from the page's own origin.
    if (cfg.sandbox && origin === window.location.origin) return true;
    try {
      const u = new URL(origin);
      if (cfg.sdkOrigin && u.origin === new URL(cfg.sdkOrigin).origin) return true;
      return u.protocol === 'https:' && (u.hostname === 'facebook.com' || u.hostname.endsWith('.facebook.com'));
    } catch (e) {
      return false;
    }
  };

  window.addEventListener('message', (e) => {
    if (!trustedOrigin(e.origin)) return;
    let m = e.data;
    if (typeof m === 'string') {
      try { m = JSON.parse(m); } catch (err) { return; }
    }
    if (!m || typeof m !== 'object' || m.type !== 'WA_EMBEDDED_SIGNUP') return;
    const a = attempt;
    if (!a || a.posted) return;
    const ev = String(m.event || '').toUpperCase();
    let d = m.data;
    if (typeof d === 'string') {
      try { d = JSON.parse(d); } catch (err) { d = {}; }
    }
    d = d && typeof d === 'object' ? d : {};

    if (ev === 'FINISH' || ev.indexOf('FINISH_') === 0) {
      if (a.finish || a.failure) return;
      a.finish = { event: ev, data: d };
      a.report = reportSession(ev, d);
      if (a.code) postFinish(a);
      else if (a.login) post(a, { error: { code: 'missing_code' } });
      return;
    }
    if (ev !== 'CANCEL' && ev !== 'ERROR') return;
    if (a.failure || a.finish) return;
    // Codes and Meta's ids only: the server words the message (no free text travels).
    const metaCode = String(d.error_code != null && d.error_code !== '' ? d.error_code : (d.error_id != null ? d.error_id : ''));
    const f = { code: ev === 'ERROR' || d.error_message || metaCode ? 'meta_signup_error' : 'signup_cancelled' };
    if (/^[0-9]{1,16}$/.test(metaCode)) f.metaErrorCode = metaCode;
    const step = String(d.current_step || '');
    if (/^[A-Z0-9_]{1,64}$/.test(step)) f.step = step;
    const session = String(d.session_id || m.session_id || '');
    if (/^[A-Za-z0-9._-]{1,128}$/.test(session)) f.sessionId = session;
    a.failure = f;
    clearTimers(a);
    if (a.login) post(a, { error: f });
    else later(a, CANCEL_WAIT_MS, () => post(a, { error: f }));
  });

  // ---- Callback to our server ---------------------------------------------

  const post = (a, body) => {
    if (a.posted) return;
    a.posted = true;
    clearTimers(a);
    setStatus(MSG.connecting);
    setBusy(true);
    fetch(cfg.callbackUrl, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      credentials: 'same-origin',
      body: JSON.stringify(body),
    }).then((r) => r.text().then((t) => {
      let res = null;
      try { res = JSON.parse(t); } catch (e) { res = null; }
      settle(a, r.status, res);
    })).catch(() => {
      if (a !== attempt) return;
      a.settled = true;
      fail({ message: MSG.network }, true);
    });
  };

  const settle = (a, httpStatus, res) => {
    if (a !== attempt) return;
    a.settled = true;
    res = res && typeof res === 'object' ? res : {};
    const redirect = typeof res.redirectUrl === 'string' && res.redirectUrl ? res.redirectUrl : null;
    if (res.status === 'success') {
      show(retryBtn, false);
      show(connectBtn, false);
      if (redirect) {
        setStatus(MSG.redirecting);
        window.location.assign(redirect);
      } else {
        setStatus('');
        setResult(MSG.done, 'success');
      }
      return;
    }
    const err = res.error && typeof res.error === 'object' ? res.error : {};
    const code = err.code ? String(err.code) : '';
    const terminal = TERMINAL.indexOf(code) >= 0 || httpStatus === 404 || httpStatus === 409 || httpStatus === 410;
    fail({ message: err.message ? String(err.message) : MSG.generic }, !terminal, redirect);
  };

  const fail = (err, canRetry, redirect) => {
    setStatus('');
    setResult(err.message, 'error');
    show(connectBtn, false);
    show(retryBtn, canRetry);
    retryBtn.disabled = false;
    if (redirect) returnLink.href = redirect;
    show(returnLink, !!redirect);
  };

  connectBtn.addEventListener('click', start);
  retryBtn.addEventListener('click', start);
})();
