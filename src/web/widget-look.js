/* Switchboard widget: its default texts (translatable through window.SwitchboardWidget.strings)
 * and its style sheet, kept apart from the behaviour in widget.js. Served before widget.js in the
 * same function scope (see src/web/README.md). */
var SbWidgetLook = (function () {
  'use strict';

  var STRINGS = {
    button: 'Chat with us',
    title: 'Chat with us',
    close: 'Close chat window',
    intro: 'Leave your details and we will be with you shortly.',
    name: 'Name',
    email: 'E-mail',
    question: 'Your question',
    optional: '(optional)',
    start: 'Start chat',
    requesting: 'Requesting a chat…',
    queued: 'You are number {n} in the queue',
    waiting: 'Waiting for an agent…',
    chattingWith: 'You are chatting with {name}',
    input: 'Type a message',
    inputQueued: 'Add to your question while you wait',
    yourQuestion: 'Your question: {text}',
    queuedFull: 'Please wait for an agent before writing more.',
    send: 'Send',
    end: 'End chat',
    cancel: 'Cancel request',
    ended: 'The chat has ended.',
    newChat: 'Start a new chat',
    connecting: 'Connecting…',
    reconnecting: 'Connection lost. Reconnecting…',
    messages: 'Chat messages',
    you: 'You',
    sending: 'Sending…',
    failed: 'Not sent',
    required: '{field} is required.',
    invalidEmail: 'Please enter a valid e-mail address.',
    notConnected: 'Not connected. Please try again in a moment.',
    unavailable: 'Chat is not available on this site.',
    newMessage: 'New message',
    typing: '{name} is typing…',
    agent: 'The agent',
    delivered: 'Delivered',
    read: 'Read',
    pushed: 'The agent opened this page for you:',
    invited: '{name} would like to chat with you',
    accept: 'Accept',
    decline: 'Decline'
  };

  var CSS = [
    ':host{all:initial}',
    '*{box-sizing:border-box;font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}',
    '.sb-button{position:fixed;right:20px;bottom:20px;z-index:2147483000;border:0;border-radius:28px;padding:14px 20px;background:var(--sb-c,#1f5fbf);color:var(--sb-fg,#fff);font-size:15px;cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.25)}',
    '.sb-button:focus-visible,.sb-pane button:focus-visible,.sb-pane input:focus-visible,.sb-pane textarea:focus-visible{outline:3px solid #f5a623;outline-offset:2px}',
    '.sb-badge{display:inline-block;min-width:10px;height:10px;margin-left:8px;border-radius:5px;background:#ff4d4f;vertical-align:middle}',
    '.sb-pane{position:fixed;right:20px;bottom:84px;z-index:2147483000;width:360px;max-width:calc(100vw - 24px);height:520px;max-height:calc(100vh - 110px);display:flex;flex-direction:column;background:#fff;color:#1d1d1f;border-radius:12px;box-shadow:0 8px 30px rgba(0,0,0,.3);overflow:hidden;font-size:14px}',
    '.sb-pane[hidden],[hidden]{display:none!important}',
    '.sb-head{display:flex;align-items:center;gap:8px;padding:12px 14px;background:var(--sb-c,#1f5fbf);color:var(--sb-fg,#fff)}',
    '.sb-head h2{flex:1;margin:0;font-size:16px;font-weight:600}',
    '.sb-x{border:0;background:transparent;color:inherit;font-size:22px;line-height:1;cursor:pointer;padding:2px 6px}',
    '.sb-status{padding:6px 14px;background:#eef3fb;color:#2b3a55;font-size:13px;min-height:0}',
    '.sb-status:empty{display:none}',
    '.sb-error{margin:8px 14px 0;padding:8px 10px;border-radius:6px;background:#fff1f0;color:#a8071a;font-size:13px}',
    '.sb-body{flex:1;overflow:auto;padding:10px 14px}',
    '.sb-form label{display:block;margin:10px 0 4px;font-weight:600}',
    '.sb-form input,.sb-form textarea,.sb-compose textarea{width:100%;padding:8px;border:1px solid #b9c1cc;border-radius:6px;font-size:14px;color:#1d1d1f;background:#fff}',
    '.sb-form textarea{min-height:70px;resize:vertical}',
    '.sb-opt{font-weight:400;color:#5f6b7a}',
    '.sb-primary{margin-top:12px;border:0;border-radius:6px;padding:9px 14px;background:var(--sb-c,#1f5fbf);color:var(--sb-fg,#fff);font-size:14px;cursor:pointer}',
    '.sb-primary:disabled{opacity:.6;cursor:default}',
    '.sb-send{margin-top:0}',
    '.sb-secondary{border:1px solid #b9c1cc;border-radius:6px;padding:7px 12px;background:#fff;color:#1d1d1f;font-size:13px;cursor:pointer}',
    '.sb-queue{margin:8px 0;padding:10px;border-radius:8px;background:#fffbe6;text-align:center;font-weight:600}',
    '.sb-log{list-style:none;margin:0;padding:0}',
    '.sb-msg{margin:8px 0;max-width:85%;word-wrap:break-word;overflow-wrap:anywhere;white-space:pre-wrap}',
    '.sb-msg a{color:inherit;text-decoration:underline}',
    '.sb-mine{margin-left:auto;padding:8px 10px;border-radius:10px 10px 2px 10px;background:var(--sb-c,#1f5fbf);color:var(--sb-fg,#fff)}',
    '.sb-theirs{padding:8px 10px;border-radius:10px 10px 10px 2px;background:#f0f2f5}',
    '.sb-system{max-width:100%;text-align:center;color:#5f6b7a;font-size:12px}',
    '.sb-system .sb-time{margin-left:6px}',
    '.sb-meta{display:flex;gap:8px;font-size:11px;opacity:.8;margin-bottom:2px}',
    '.sb-state{display:block;font-size:11px;opacity:.8}',
    '.sb-compose{display:flex;gap:6px;padding:8px 10px;border-top:1px solid #e3e6ea}',
    '.sb-compose textarea{flex:1;height:40px;min-height:40px;resize:none}',
    '.sb-foot{display:flex;justify-content:space-between;align-items:center;padding:6px 10px;border-top:1px solid #e3e6ea}',
    '.sb-ended{margin:10px 0;text-align:center;color:#5f6b7a}',
    '.sb-sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}',
    '.sb-url,.sb-size{display:block;font-size:11px;opacity:.8}.sb-size{display:inline}',
    '.sb-rcpt{display:block;text-align:right;font-size:11px;line-height:1;opacity:.9}',
    '.sb-typing{padding:2px 14px;font-size:12px;color:#5f6b7a;font-style:italic}',
    '.sb-attach{border:1px solid #b9c1cc;border-radius:6px;background:#fff;color:#1d1d1f;font-size:18px;width:40px;cursor:pointer}',
    '.sb-invite{position:fixed;right:20px;bottom:84px;z-index:2147483001;width:300px;max-width:calc(100vw - 24px);padding:14px;background:#fff;color:#1d1d1f;border-radius:12px;box-shadow:0 8px 30px rgba(0,0,0,.3);font-size:14px}',
    '.sb-invite p{margin:0 0 8px;white-space:pre-wrap;overflow-wrap:anywhere}',
    '.sb-invite .sb-primary{margin:0 8px 0 0}',
    '.sb-invite button:focus-visible,.sb-attach:focus-visible{outline:3px solid #f5a623;outline-offset:2px}',
    '.sb-echo{margin:8px 0 0;font-weight:400;white-space:pre-wrap;overflow-wrap:anywhere}',
    // Phones: the pane takes the whole screen, and 16 px inputs keep the browser from zooming.
    '@media (max-width:480px){.sb-pane{inset:0;right:0;bottom:0;width:100%;max-width:none;height:100%;max-height:none;border-radius:0}' +
      '.sb-pane input,.sb-pane textarea{font-size:16px!important}.sb-pane:not([hidden])~.sb-button{display:none}}',
    ':host(.sb-left) .sb-button,:host(.sb-left) .sb-pane,:host(.sb-left) .sb-invite{right:auto;left:20px}',
    SbOffline.CSS, SbWidgetFiles.CSS, SbAfterChat.CSS
  ].join('\n');

  /** Whether dark text reads better than white on `hex` (#rrggbb): relative luminance. */
  function light(hex) {
    var l = [1, 3, 5].map(function (i) {
      var c = parseInt(hex.substr(i, 2), 16) / 255;
      return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * l[0] + 0.7152 * l[1] + 0.0722 * l[2] > 0.179;
  }

  /** Applies the admin's appearance (`GET /api/widget/appearance`): colour and corner on the
   * host element, texts into `S` where the page did not set its own (`own`). Texts are only
   * ever shown with textContent. */
  function apply(a, host, S, own) {
    if (!a || typeof a !== 'object') return;
    if (typeof a.color === 'string' && /^#[0-9a-f]{6}$/i.test(a.color)) {
      host.style.setProperty('--sb-c', a.color);
      host.style.setProperty('--sb-fg', light(a.color) ? '#1d1d1f' : '#fff');
    }
    host.classList.toggle('sb-left', a.position === 'left');
    var keys = { launcher_text: 'button', greeting: 'intro', offline_text: 'offlineIntro' };
    Object.keys(keys).forEach(function (k) {
      var v = a[k];
      if (typeof v === 'string' && v && !(own && typeof own[keys[k]] === 'string')) S[keys[k]] = v;
    });
  }

  /** Reads the admin's look from the node on each page load and applies it, then calls
   * `applied`. The widget (`host`) stays hidden until it arrives (at most 2 s), so it does not
   * change under the visitor's eye; without an answer it keeps the built-in look. */
  function load(base, host, S, own, applied) {
    var shown = false;
    function show() {
      if (shown) return;
      shown = true;
      host.style.visibility = '';
    }
    host.style.visibility = 'hidden';
    setTimeout(show, 2000);
    fetch(base + '/api/widget/appearance', { credentials: 'omit' }).then(function (r) {
      return r.ok ? r.json() : null;
    }).then(function (a) {
      apply(a, host, S, own);
      applied();
    }).catch(function () { /* the built-in look */ }).then(show);
  }

  return { STRINGS: STRINGS, CSS: CSS, apply: apply, light: light, load: load };
})();
