// Sandbox stand-in for Meta's Embedded Signup popup. Reports to the opener the way Meta
// does (a WA_EMBEDDED_SIGNUP session message), then hands the code to the fake SDK.
(() => {
  'use strict';

  const $ = (id) => document.getElementById(id);
  const q = new URLSearchParams(window.location.search);
  const appId = q.get('app_id') || '';
  const configId = q.get('config_id') || '';
  const targetOrigin = q.get('origin') || window.location.origin;
  const finishBtn = $('finish');
  const cancelBtn = $('cancel');
  const statusEl = $('dialog-status');
  // The sentences this script writes, in the dialog's language (rendered by the server).
  const msg = JSON.parse($('dialog-messages').textContent);
  const say = (key, error) => msg[key].replace('{error}', () => error);

  $('app-id').textContent = appId || '—';
  $('config-id').textContent = configId || '—';
  $('opener-origin').textContent = targetOrigin;
  try {
    $('extras').textContent = JSON.stringify(JSON.parse(q.get('extras') || '{}'), null, 2);
  } catch (e) {
    $('extras').textContent = q.get('extras') || '{}';
  }

  const setBusy = (busy) => { finishBtn.disabled = busy; cancelBtn.disabled = busy; };
  const fail = (text) => {
    statusEl.className = 'message error';
    statusEl.textContent = text;
    setBusy(false);
  };

  if (!window.opener) {
    $('no-opener').classList.remove('hidden');
    $('controls').disabled = true;
    return;
  }

  const report = (session, code) => {
    const opener = window.opener;
    if (!opener) {
      $('no-opener').classList.remove('hidden');
      setBusy(false);
      return;
    }
    // Meta sends `data` as an object in most flows and as a JSON string in some: the
    // sandbox uses the string form for the OBO migration, so pages handle both.
    if (session.event === 'FINISH_OBO_MIGRATION') session = Object.assign({}, session, { data: JSON.stringify(session.data) });
    opener.postMessage(JSON.stringify(Object.assign({ type: 'WA_EMBEDDED_SIGNUP' }, session)), targetOrigin);
    opener.postMessage(JSON.stringify({ type: 'SANDBOX_LOGIN', code: code || null }), targetOrigin);
    window.close();
  };

  finishBtn.addEventListener('click', () => {
    setBusy(true);
    statusEl.className = 'status';
    statusEl.textContent = msg.dialog_finishing;
    fetch('/_sandbox/dialog/finish', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({
        scenario: $('scenario').value,
        app_id: appId,
        config_id: configId,
        // Signing up again with an account the business has (empty: a new account).
        waba_id: $('existing-waba').value.trim(),
        business_id: $('existing-business').value.trim(),
      }),
    })
      .then((r) => {
        if (!r.ok) throw new Error('HTTP ' + r.status);
        return r.json();
      })
      .then((resp) => report({ event: resp.event, data: resp.data || {} }, resp.code))
      .catch((err) => {
        fail(say('dialog_finish_failed', err.message));
      });
  });

  cancelBtn.addEventListener('click', () => {
    setBusy(true);
    try {
      // Meta's two cancel shapes; both carry a session id, which Meta support asks for.
      const session = Math.random().toString(16).slice(2, 18);
      const data = $('cancel-shape').value === 'error'
        ? { error_message: msg.dialog_meta_error_message, error_code: '524126', session_id: session, timestamp: String(Math.floor(Date.now() / 1000)) }
        : { current_step: $('step').value, session_id: session };
      report({ event: 'CANCEL', data: data }, null);
    } catch (err) {
      fail(say('dialog_report_failed', err.message));
    }
  });
})();
