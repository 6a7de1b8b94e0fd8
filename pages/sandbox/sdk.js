// Offline stand-in for Meta's JS SDK (sandbox mode only). Same surface the hosted page
// uses: FB.init, FB.login (popup + callback), FB.getLoginStatus.
(() => {
  'use strict';

  const POPUP_NAME = 'edge_sandbox_signup';
  const POPUP_FEATURES = 'width=520,height=680';
  // The locale the page loaded the SDK in (Meta's is in the SDK's path, ours in ?locale=):
  // the popup speaks it, as Meta's does.
  const LOCALE = (() => {
    try {
      return new URL(document.currentScript.src).searchParams.get('locale') || '';
    } catch (e) {
      return '';
    }
  })();
  let initOptions = null;
  let pending = null; // the login waiting for its popup

  const finish = (login, code) => {
    if (login.done) return;
    login.done = true;
    clearInterval(login.poll);
    if (pending === login) pending = null;
    const response = code
      ? { authResponse: { code: code }, status: 'connected' }
      : { authResponse: null, status: 'unknown' };
    try { login.cb(response); } catch (e) { setTimeout(() => { throw e; }); }
  };

  window.addEventListener('message', (e) => {
    if (e.origin !== window.location.origin || !pending) return;
    let m = e.data;
    if (typeof m === 'string') {
      try { m = JSON.parse(m); } catch (err) { return; }
    }
    if (!m || m.type !== 'SANDBOX_LOGIN') return;
    finish(pending, typeof m.code === 'string' && m.code ? m.code : null);
  });

  window.FB = {
    init(opts) {
      initOptions = Object.assign({}, opts);
    },

    login(cb, opts) {
      const callback = typeof cb === 'function' ? cb : () => {};
      opts = opts || {};
      if (pending) finish(pending, null); // a new login supersedes an unfinished one
      const params = new URLSearchParams({
        app_id: initOptions && initOptions.appId != null ? String(initOptions.appId) : '',
        config_id: opts.config_id != null ? String(opts.config_id) : '',
        origin: window.location.origin,
        extras: JSON.stringify(opts.extras || {}),
      });
      if (LOCALE) params.set('locale', LOCALE);
      // Synchronous, like the real SDK: we are still inside the user's click.
      const popup = window.open('/_sandbox/dialog?' + params.toString(), POPUP_NAME, POPUP_FEATURES);
      const login = { cb: callback, done: false, poll: 0 };
      if (!popup) {
        setTimeout(() => finish(login, null), 0);
        return;
      }
      pending = login;
      login.poll = setInterval(() => {
        if (!popup.closed) return;
        clearInterval(login.poll);
        // The popup posts its result just before closing: let that message land first.
        setTimeout(() => finish(login, null), 300);
      }, 300);
    },

    getLoginStatus(cb) {
      setTimeout(() => cb({ authResponse: null, status: 'unknown' }), 0);
    },
  };

  setTimeout(() => {
    if (typeof window.fbAsyncInit === 'function') window.fbAsyncInit();
  }, 0);
})();
