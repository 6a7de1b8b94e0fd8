// Hosted Embedded Signup page. No inline code (CSP); plain ES2017, no build step.
// Every word it shows comes from the server, in the page's language (cfg.msg, cfg.errors).
(() => {
  'use strict';

  const $ = (id) => document.getElementById(id);
  // This script runs: the "page did not load" notice is not needed.
  const missing = $('script-missing');
  if (missing) missing.remove();
  const connectBtn = $('connect');
  const retryBtn = $('retry');
  const statusEl = $('status');
  const resultEl = $('result');
  const returnLink = $('return-link');
  const progressEl = $('progress');
  const successEl = $('success');
  const supportEl = $('support');
  const selfSrc = document.currentScript ? document.currentScript.src : '';

  let cfg = {};
  try {
    cfg = JSON.parse($('edge-config').textContent) || {};
  } catch (e) {
    cfg = {};
  }
  // An update link's page has an intro of its own (what its number needs: signup again).
  const introEl = cfg.update ? $('update-intro') : $('intro');
  const MSG = cfg.msg || {};
  const ERRORS = cfg.errors || {};
  const errorText = (code) => ERRORS[code] || ERRORS.generic || '';

  const SDK_TIMEOUT_MS = 8000;
  const CANCEL_WAIT_MS = 1500;
  const FINISH_WAIT_MS = 10000;
  const REPORT_WAIT_MS = 1500;
  const PROGRESS_STEP_MS = [1200, 2600];
  // A busy server refuses a callback before spending its code (service_busy): posted
  // again after Retry-After while the code is young (Meta's lives 30 s).
  const BUSY_RETRY_MS = 20000;
  const TERMINAL = ['link_expired', 'link_deleted', 'link_completed', 'link_not_pending', 'link_not_found'];
  const SIGNUP_STEPS = ['reconnect', 'add_number'];

  let sdkReady = false;
  let sdkFailed = false;
  let attempt = null; // state of the current click; replaced on every click
  let finishedHere = false; // this page's own signup succeeded

  const show = (el, on) => el.classList.toggle('hidden', !on);
  const setStatus = (text) => { statusEl.textContent = text || ''; };
  const setBusy = (busy) => { connectBtn.disabled = busy || !sdkReady; retryBtn.disabled = busy; };

  const setResult = (text, kind) => {
    resultEl.className = 'message ' + (kind || '');
    resultEl.setAttribute('role', kind === 'error' ? 'alert' : 'status');
    resultEl.textContent = text;
    show(resultEl, !!text);
  };

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
    // An update link's page needs Meta's SDK only for a signup step (said when shown).
    if (cfg.update && connectBtn.classList.contains('hidden')) return;
    setStatus('');
    setResult(errorText('sdk_blocked'), 'error');
    showSupport(null);
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
      setResult(errorText('meta_not_configured'), 'notice');
      return;
    }
    if (!sdkReady && !sdkFailed && !cfg.update) setStatus(MSG.loading);
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
    showSupport(null);
    show(retryBtn, false);
    show(returnLink, false);
    show(connectBtn, true);
    setBusy(false);
    if (refocus) connectBtn.focus();
    setStatus(MSG.opening);
    // The SDK opens its popup with window.open inside FB.login: a null window means the
    // browser blocked it, which the SDK itself reports only as a closed window.
    const realOpen = window.open;
    let popup;
    window.open = function () {
      popup = realOpen.apply(window, arguments);
      return popup;
    };
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
      fail('generic', true);
      return;
    } finally {
      window.open = realOpen;
    }
    if (popup === null) {
      attempt = null;
      fail('popup_blocked', true);
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

  // The server's steps (code exchange, account checks, registration) as a progress
  // view: they take a few seconds, and the page cannot see them one by one.
  const showProgress = (a) => {
    show(introEl, false);
    show(progressEl, true);
    const items = progressEl.querySelectorAll('li');
    const mark = (n) => items.forEach((li, i) => {
      li.className = i < n ? 'done' : i === n ? 'current' : '';
    });
    mark(0);
    PROGRESS_STEP_MS.forEach((ms, i) => setTimeout(() => { if (a === attempt && !a.settled) mark(i + 1); }, ms));
  };

  const post = (a, body) => {
    if (a.posted) return;
    a.posted = true;
    clearTimers(a);
    setBusy(true);
    if (body.code) showProgress(a);
    deliver(a, body, Date.now());
  };

  const deliver = (a, body, firstAt) => {
    fetch(cfg.callbackUrl, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      credentials: 'same-origin',
      body: JSON.stringify(body),
    }).then((r) => r.text().then((t) => {
      let res = null;
      try { res = JSON.parse(t); } catch (e) { res = null; }
      const wait = parseInt(r.headers.get('Retry-After') || '1', 10) || 1;
      const code = res && res.error && typeof res.error === 'object' ? res.error.code : '';
      if (r.status === 503 && code === 'service_busy' && a === attempt
          && Date.now() + wait * 1000 - firstAt < BUSY_RETRY_MS) {
        // Nothing was done: the same body again after the wait, still this attempt's.
        setTimeout(() => { if (a === attempt) deliver(a, body, firstAt); }, wait * 1000);
        return;
      }
      settle(a, r.status, res, body);
    })).catch(() => {
      if (a !== attempt) return;
      a.settled = true;
      fail('network', true);
    });
  };

  // A {field} of the message (a masked number, a wait), isolated so it reads left to
  // right inside right-to-left text.
  const fillField = (el, text, field, value) => {
    el.textContent = '';
    const parts = text.split('{' + field + '}');
    parts.forEach((part, i) => {
      if (i > 0) {
        const bdi = document.createElement('bdi');
        bdi.dir = 'ltr';
        bdi.textContent = value;
        el.appendChild(bdi);
      }
      el.appendChild(document.createTextNode(part));
    });
  };
  const fillNumber = (el, text, number) => fillField(el, text, 'number', number);

  const succeed = (res) => {
    show(introEl, false);
    show(progressEl, false);
    show(retryBtn, false);
    show(connectBtn, false);
    setStatus('');
    const number = typeof res.phoneNumberMasked === 'string' ? res.phoneNumberMasked : '';
    fillNumber($('success-text'), number ? MSG.success_number : MSG.success_account, number);
    show(successEl, true);
    $('success-title').focus();
    finishedHere = true;
  };

  const settle = (a, httpStatus, res, sent) => {
    if (a !== attempt) return;
    a.settled = true;
    res = res && typeof res === 'object' ? res : {};
    const redirect = typeof res.redirectUrl === 'string' && res.redirectUrl ? res.redirectUrl : null;
    if (res.status === 'success') {
      if (cfg.update && res.update && typeof res.update === 'object') {
        show(progressEl, false);
        update.go(res.update);
        return;
      }
      if (res.verification && typeof res.verification === 'object' && res.verification.token) {
        verify.open(res, redirect);
        return;
      }
      if (redirect) {
        show(connectBtn, false);
        setStatus(MSG.redirecting);
        window.location.assign(redirect);
      } else {
        succeed(res);
      }
      return;
    }
    const err = res.error && typeof res.error === 'object' ? res.error : {};
    const code = err.code ? String(err.code) : '';
    const terminal = TERMINAL.indexOf(code) >= 0 || httpStatus === 404 || httpStatus === 409 || httpStatus === 410;
    if (terminal && code !== 'completion_in_progress') {
      // Expired, deleted or already used: on to the customer (refreshUrl or redirectUrl),
      // else this page again, which then says what happened in so many words.
      show(progressEl, false);
      show(connectBtn, false);
      if (redirect) window.location.assign(redirect);
      else window.location.reload();
      return;
    }
    const reported = (sent && sent.error) || {};
    const session = a.finish && a.finish.data ? String(a.finish.data.session_id || '') : '';
    fail(code || 'generic', !terminal, redirect, {
      code: code,
      meta: reported.metaErrorCode,
      session: reported.sessionId || (/^[A-Za-z0-9._-]{1,128}$/.test(session) ? session : ''),
      step: reported.step,
    });
  };

  // Meta's numbers and step names are for support staff: in a collapsed line, never
  // in the sentence the end-user reads.
  const showSupport = (facts) => {
    const list = $('support-facts');
    list.textContent = '';
    const rows = facts ? [
      [MSG.details_code, facts.code + (facts.meta ? ' · ' + facts.meta : '')],
      [MSG.details_session, facts.session],
      [MSG.details_step, facts.step],
    ].filter((r) => r[1]) : [];
    rows.forEach((r) => {
      const dt = document.createElement('dt');
      dt.textContent = r[0];
      const dd = document.createElement('dd');
      dd.textContent = r[1];
      list.appendChild(dt);
      list.appendChild(dd);
    });
    supportEl.open = false;
    show(supportEl, rows.length > 0);
  };

  const fail = (code, canRetry, redirect, facts) => {
    setStatus('');
    show(progressEl, false);
    show(introEl, true);
    setResult(errorText(code), 'error');
    showSupport(facts || { code: code });
    show(connectBtn, false);
    show(retryBtn, canRetry);
    retryBtn.disabled = false;
    if (redirect) returnLink.href = redirect;
    show(returnLink, !!redirect);
    // Keyboard and screen reader users land on what went wrong, not on <body>.
    resultEl.focus();
  };

  // ---- The number's code, when the signup ended unverified -----------------

  // A wait in seconds, as m:ss.
  const fillWait = (el, text, seconds) => {
    const s = Math.max(0, Math.ceil(seconds));
    fillField(el, text, 'time', Math.floor(s / 60) + ':' + String(s % 60).padStart(2, '0'));
  };

  const verify = (() => {
    const section = $('verify');
    const sendBtn = $('send-code');
    const form = $('code-form');
    const input = $('code');
    const checkBtn = $('check-code');
    const resendBtn = $('resend');
    const resendWait = $('resend-wait');
    const errorEl = $('verify-error');
    const laterBtn = $('later');
    let st = null;

    const method = () => {
      const picked = document.querySelector('input[name="method"]:checked');
      return picked ? picked.value : 'sms';
    };
    const setError = (text) => {
      errorEl.textContent = text || '';
      show(errorEl, !!text);
    };
    const busy = (on, text) => {
      st.busy = on;
      sendBtn.disabled = on || st.blockedUntil > Date.now();
      checkBtn.disabled = on || st.blockedUntil > Date.now();
      resendBtn.disabled = on || st.resendAt > Date.now() || st.blockedUntil > Date.now();
      setStatus(on ? text : '');
    };

    // One timer for both waits: Meta's cooldown before "send again", and a rate limit's.
    const tick = () => {
      const now = Date.now();
      const resendIn = (Math.max(st.resendAt, st.blockedUntil) - now) / 1000;
      if (resendIn > 0 && !form.classList.contains('hidden')) fillWait(resendWait, MSG.verify_resend_in, resendIn);
      else resendWait.textContent = '';
      if (!st.busy) {
        const blocked = st.blockedUntil > now;
        sendBtn.disabled = blocked;
        checkBtn.disabled = blocked;
        resendBtn.disabled = blocked || st.resendAt > now;
      }
      if (resendIn <= 0 && st.timer) { clearInterval(st.timer); st.timer = null; }
    };
    const startTimer = () => {
      if (!st.timer) st.timer = setInterval(tick, 1000);
      tick();
    };

    const call = (url, body) => fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Signup-Pass': st.token },
      credentials: 'same-origin',
      body: JSON.stringify(body),
    }).then((r) => r.text().then((t) => {
      let res = null;
      try { res = JSON.parse(t); } catch (e) { res = null; }
      return { status: r.status, wait: parseInt(r.headers.get('Retry-After') || '0', 10) || 0, res: res || {} };
    }));

    const failed = (out) => {
      const err = out.res.error && typeof out.res.error === 'object' ? out.res.error : {};
      let code = err.code ? String(err.code) : (out.status ? 'generic' : 'network');
      if (code === 'rate_limited') code = 'verification_rate_limited';
      if (code === 'phone_not_pending_verification') return done({ redirectUrl: st.redirect }); // verified meanwhile
      if (cfg.update && TERMINAL.indexOf(code) >= 0) return window.location.reload();
      if (out.wait > 0 && out.status === 429) {
        st.blockedUntil = Date.now() + out.wait * 1000;
        fillWait(errorEl, errorText(code), out.wait);
        show(errorEl, true);
        startTimer();
      } else {
        setError(errorText(code));
      }
      if (code === 'verification_code_incorrect' || code === 'verification_code_expired') {
        input.setAttribute('aria-invalid', 'true');
        input.select();
      }
      errorEl.focus();
    };

    const done = (res) => {
      if (st.timer) clearInterval(st.timer);
      if (cfg.update) {
        show(section, false);
        update.load();
        return;
      }
      const target = typeof res.redirectUrl === 'string' && res.redirectUrl ? res.redirectUrl : null;
      show(section, false);
      if (target) {
        setStatus(MSG.redirecting);
        window.location.assign(target);
      } else {
        succeed({ phoneNumberMasked: st.number });
      }
    };

    const send = () => {
      if (st.busy) return;
      setError('');
      busy(true, MSG.verify_sending);
      const how = method();
      call(cfg.verifyCodeUrl, { method: how, locale: cfg.locale }).then((out) => {
        busy(false);
        if (out.status !== 200) return failed(out);
        const wait = Number(out.res.resendAfter) > 0 ? Number(out.res.resendAfter) : 60;
        st.resendAt = Date.now() + wait * 1000;
        fillNumber($('code-sent'), how === 'voice' ? MSG.verify_sent_voice : MSG.verify_sent_sms, st.number);
        show(sendBtn, false);
        show(form, true);
        startTimer();
        input.focus();
      }).catch(() => { busy(false); failed({ status: 0, wait: 0, res: {} }); });
    };

    // Typed, pasted whole ("123 456", "123-456") or filled in by the phone: digits only.
    input.addEventListener('input', () => {
      const digits = input.value.replace(/[^0-9]/g, '').slice(0, 6);
      if (input.value !== digits) input.value = digits;
      input.removeAttribute('aria-invalid');
    });

    form.addEventListener('submit', (e) => {
      e.preventDefault();
      if (st.busy) return;
      const code = input.value.replace(/[^0-9]/g, '');
      if (code.length !== 6) {
        setError(errorText('code_format'));
        input.setAttribute('aria-invalid', 'true');
        input.focus();
        return;
      }
      setError('');
      busy(true, MSG.verify_checking);
      call(cfg.verifyUrl, { code: code }).then((out) => {
        busy(false);
        if (out.status === 200 && out.res.status === 'success') return done(out.res);
        failed(out);
      }).catch(() => { busy(false); failed({ status: 0, wait: 0, res: {} }); });
    });

    sendBtn.addEventListener('click', send);
    resendBtn.addEventListener('click', send);
    laterBtn.addEventListener('click', () => {
      if (st.timer) clearInterval(st.timer);
      if (cfg.update) {
        show(section, false);
        update.skip('verify');
        return;
      }
      if (st.later) {
        show(section, false);
        setStatus(MSG.redirecting);
        window.location.assign(st.later);
        return;
      }
      show(section, false);
      succeed({ phoneNumberMasked: st.number });
      show($('success-later'), true);
    });

    return {
      open: (res, redirect) => {
        const v = res.verification;
        st = {
          token: String(v.token),
          later: typeof v.laterUrl === 'string' && v.laterUrl ? v.laterUrl : null,
          redirect: redirect,
          number: typeof v.phoneNumberMasked === 'string' ? v.phoneNumberMasked : '',
          resendAt: 0,
          blockedUntil: 0,
          timer: null,
          busy: false,
        };
        show(introEl, false);
        show(progressEl, false);
        show(connectBtn, false);
        show(retryBtn, false);
        setStatus('');
        setResult('');
        showSupport(null);
        fillNumber($('verify-text'), MSG.verify_intro, st.number);
        show(section, true);
        $('verify-title').focus();
      },
    };
  })();

  // ---- An update link: only what its number needs, then its business profile -----

  const update = (() => {
    const stepsEl = $('update-steps');
    const section = $('profile');
    const form = $('profile-form');
    const errorEl = $('profile-error');
    const saveBtn = $('profile-save');
    const TEXT_FIELDS = ['about', 'description', 'address', 'email'];
    const field = (name) => form.elements[name];
    let plan = null;
    let all = null; // the steps as first shown: done ones stay ticked
    let initial = {};
    let busy = false;

    const post = (url, body, token) => fetch(url, {
      method: 'POST',
      headers: Object.assign({ 'Content-Type': 'application/json' }, token ? { 'X-Signup-Pass': token } : {}),
      credentials: 'same-origin',
      body: JSON.stringify(body || {}),
    }).then((r) => r.text().then((t) => {
      let res = null;
      try { res = JSON.parse(t); } catch (e) { res = null; }
      return { status: r.status, res: res || {} };
    }));

    const codeOf = (out) => {
      const err = out.res.error && typeof out.res.error === 'object' ? out.res.error : {};
      return { code: err.code ? String(err.code) : (out.status ? 'generic' : 'network'), param: err.param ? String(err.param) : '' };
    };

    const drawSteps = (current) => {
      stepsEl.textContent = '';
      const at = all.indexOf(current);
      all.forEach((name, i) => {
        const li = document.createElement('li');
        li.textContent = MSG['update_step_' + name] || name;
        if (i < at || current === null) li.className = 'done';
        else if (i === at) { li.className = 'current'; li.setAttribute('aria-current', 'step'); }
        stepsEl.appendChild(li);
      });
      show(stepsEl, all.length > 1);
    };

    const nameStatus = (s) => {
      const v = String(s || '').toUpperCase();
      if (v === 'APPROVED' || v === 'AVAILABLE_WITHOUT_REVIEW') return MSG.name_approved;
      if (v === 'PENDING_REVIEW') return MSG.name_pending;
      if (v === 'DECLINED' || v === 'EXPIRED') return MSG.name_declined;
      return MSG.name_none;
    };

    const openProfile = () => {
      const p = plan.profile && typeof plan.profile === 'object' ? plan.profile : {};
      initial = {};
      TEXT_FIELDS.forEach((name) => {
        initial[name] = typeof p[name] === 'string' ? p[name] : '';
        field(name).value = initial[name];
      });
      const sites = Array.isArray(p.websites) ? p.websites.filter((w) => typeof w === 'string') : [];
      initial.websites = sites.slice(0, 2);
      field('website1').value = sites[0] || '';
      field('website2').value = sites[1] || '';
      const nameEl = $('profile-name');
      nameEl.textContent = '';
      const bdi = document.createElement('bdi');
      bdi.textContent = plan.displayName || '—';
      nameEl.appendChild(bdi);
      $('profile-name-status').textContent = nameStatus(plan.nameStatus);
      setError('', '');
      show(section, true);
      $('profile-title').focus();
    };

    const setError = (text, param) => {
      form.querySelectorAll('[aria-invalid]').forEach((el) => el.removeAttribute('aria-invalid'));
      errorEl.textContent = text || '';
      show(errorEl, !!text);
      const name = /^websites/.test(param) ? (param === 'websites[1]' ? 'website2' : 'website1') : param;
      const bad = name && field(name);
      if (bad) {
        bad.setAttribute('aria-invalid', 'true');
        bad.setAttribute('aria-describedby', 'profile-error');
        bad.focus();
      } else if (text) {
        errorEl.focus();
      }
    };

    // What the end-user changed: only that is sent (the server also drops what Meta has).
    const changed = () => {
      const out = {};
      TEXT_FIELDS.forEach((name) => {
        const value = field(name).value.trim();
        if (value !== initial[name]) out[name] = value;
      });
      const sites = [field('website1').value.trim(), field('website2').value.trim()].filter((w) => w);
      if (sites.join('\n') !== initial.websites.join('\n')) out.websites = sites;
      return out;
    };

    const finished = (res) => {
      const target = typeof res.redirectUrl === 'string' && res.redirectUrl ? res.redirectUrl : null;
      show(section, false);
      show(stepsEl, false);
      finishedHere = true;
      if (target) {
        setStatus(MSG.redirecting);
        window.location.assign(target);
        return;
      }
      $('success-title').textContent = MSG.update_done_title;
      $('success-text').textContent = MSG.update_done_text;
      show(successEl, true);
      $('success-title').focus();
    };

    form.addEventListener('submit', (e) => {
      e.preventDefault();
      if (busy) return;
      busy = true;
      saveBtn.disabled = true;
      setError('', '');
      setStatus(MSG.profile_saving);
      const profile = changed();
      const body = Object.keys(profile).length ? { profile: profile } : {};
      post(cfg.updateFinishUrl, body, plan.token).then((out) => {
        busy = false;
        saveBtn.disabled = false;
        setStatus('');
        if (out.status === 200 && out.res.status === 'success') return finished(out.res);
        const err = codeOf(out);
        if (TERMINAL.indexOf(err.code) >= 0 || out.status === 410) return window.location.reload();
        setError(errorText(err.code), err.param);
      }).catch(() => {
        busy = false;
        saveBtn.disabled = false;
        setStatus('');
        setError(errorText('network'), '');
      });
    });

    const go = (next) => {
      plan = next;
      const steps = Array.isArray(plan.steps) ? plan.steps.map(String) : ['profile'];
      if (!all) all = steps.slice();
      steps.forEach((name) => { if (all.indexOf(name) < 0) all.splice(all.length - 1, 0, name); });
      const current = steps[0] || 'profile';
      setStatus('');
      setResult('');
      showSupport(null);
      show(returnLink, false);
      drawSteps(current);
      show($('intro'), false);
      show(introEl, false);
      show(section, false);
      show(connectBtn, false);
      show(retryBtn, false);
      if (SIGNUP_STEPS.indexOf(current) >= 0) {
        const kind = current === 'reconnect' ? 'reconnect' : 'add';
        $('update-heading').textContent = MSG['update_heading_' + kind];
        $('update-text').textContent = MSG['update_intro_' + kind];
        show(introEl, true);
        show(connectBtn, true);
        setBusy(false);
        if (sdkFailed) {
          setResult(errorText('sdk_blocked'), 'error');
          connectBtn.disabled = true;
        } else if (!sdkReady && cfg.metaConfigured) {
          setStatus(MSG.loading);
        }
        $('update-heading').focus();
        return;
      }
      if (current === 'verify' && plan.verification && plan.verification.token) {
        verify.open({ verification: plan.verification }, null);
        return;
      }
      openProfile();
    };

    const load = () => {
      setStatus(MSG.update_loading);
      post(cfg.updateUrl, {}, null).then((out) => {
        if (out.status === 200 && out.res && Array.isArray(out.res.steps)) return go(out.res);
        const err = codeOf(out);
        setStatus('');
        if (TERMINAL.indexOf(err.code) >= 0 || out.status === 404 || out.status === 410) return window.location.reload();
        setResult(errorText(err.code), 'error');
        resultEl.focus();
      }).catch(() => {
        setStatus('');
        setResult(errorText('network'), 'error');
      });
    };

    return {
      go: go,
      load: load,
      skip: (name) => go(Object.assign({}, plan, { steps: plan.steps.filter((s) => s !== name) })),
    };
  })();

  if (cfg.update) update.load();

  connectBtn.addEventListener('click', start);
  retryBtn.addEventListener('click', start);

  // A page left open while the signup finished elsewhere (in another tab, or by recovery
  // from Meta's own notice) finds out: while it is visible it asks for the link's state,
  // every STATE_POLL_MS and at once when it is shown or focused again, and reloads once
  // the link is no longer pending (the server then shows the finished page, or sends the
  // end-user on). Never while its own attempt is being reported, nor after it succeeded.
  const STATE_POLL_MS = 15000;
  const checkState = () => {
    if (!cfg.stateUrl || finishedHere || document.visibilityState !== 'visible') return;
    if (attempt && attempt.posted && !attempt.settled) return;
    fetch(cfg.stateUrl, { credentials: 'same-origin', cache: 'no-store' })
      .then((r) => (r.ok ? r.json() : null))
      .then((s) => {
        if (s && typeof s.status === 'string' && s.status !== 'pending') window.location.reload();
      })
      .catch(() => {});
  };
  setInterval(checkState, STATE_POLL_MS);
  document.addEventListener('visibilitychange', checkState);
  window.addEventListener('focus', checkState);
})();
