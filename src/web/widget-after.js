/* Switchboard widget, after the chat: the rating (good or bad, with an optional comment) and
 * "E-mail me this transcript", shown under "The chat has ended" for a chat an agent joined.
 * Both are HTTP calls with the visitor token (docs/protocol.md, "After the chat"); what was done
 * is kept on the chat (`rated`, `mailed`) so a navigation does not ask again. Served before
 * widget.js in the same function scope (see src/web/README.md). */
var SbAfterChat = (function () {
  'use strict';

  var STRINGS = {
    rateQuestion: 'How was this chat?',
    rateGood: 'Good',
    rateBad: 'Bad',
    rateComment: 'Anything you want to add?',
    rateSend: 'Send rating',
    rateThanks: 'Thank you for your feedback.',
    rateClosed: 'This chat can no longer be rated.',
    mailOpen: 'E-mail me this transcript',
    mailSend: 'Send',
    mailSent: 'The transcript was sent to {email}.',
    mailClosed: 'This transcript can no longer be sent.',
    mailFailed: 'Sorry, the e-mail could not be sent. Please try again later.',
    tooMany: 'Too many requests. Please try again later.'
  };

  var CSS = '.sb-after{margin:8px 0;text-align:left;color:#1d1d1f}' +
    '.sb-after p{margin:6px 0}' +
    '.sb-rate{display:flex;gap:8px}' +
    '.sb-rate button[aria-pressed=true]{background:var(--sb-c,#1f5fbf);color:var(--sb-fg,#fff);border-color:var(--sb-c,#1f5fbf)}' +
    '.sb-after label{display:block;margin:8px 0 4px;font-weight:600}' +
    '.sb-after textarea,.sb-after input{width:100%;padding:8px;border:1px solid #b9c1cc;border-radius:6px;font-size:14px}' +
    '.sb-mail{display:flex;gap:6px;align-items:flex-end}.sb-mail input{flex:1}' +
    '.sb-after .sb-primary{margin-top:8px}';

  /**
   * ctx: { h, S, fmt, base, token() -> visitor token, chat() -> the widget's chat or null,
   *        email() -> the address given before the chat, canMail() -> bool, saved() }
   */
  function create(ctx) {
    var h = ctx.h, S = ctx.S, fmt = ctx.fmt;
    var choice = null;
    var busy = false;

    var good = h('button', { type: 'button', class: 'sb-secondary', 'aria-pressed': 'false', 'data-testid': 'sb-rate-good', text: '👍 ' + S.rateGood, onclick: function () { pick('good'); } });
    var bad = h('button', { type: 'button', class: 'sb-secondary', 'aria-pressed': 'false', 'data-testid': 'sb-rate-bad', text: '👎 ' + S.rateBad, onclick: function () { pick('bad'); } });
    var comment = h('textarea', { id: 'sb-rate-c', rows: '2', maxlength: '1000', 'data-testid': 'sb-rate-comment' });
    var send = h('button', { type: 'submit', class: 'sb-primary', 'data-testid': 'sb-rate-send', text: S.rateSend, disabled: true });
    var rateForm = h('form', { 'data-testid': 'sb-rate-form' }, [
      h('p', { id: 'sb-rate-q', text: S.rateQuestion }),
      h('div', { class: 'sb-rate', role: 'group', 'aria-labelledby': 'sb-rate-q' }, [good, bad]),
      h('label', { for: 'sb-rate-c', text: S.rateComment }), comment, send
    ]);
    var rateDone = h('p', { role: 'status', 'data-testid': 'sb-rate-done' });

    var mailOpen = h('button', { type: 'button', class: 'sb-secondary', 'data-testid': 'sb-transcript-open', text: S.mailOpen, onclick: function () { showMail(); } });
    var mailInput = h('input', { id: 'sb-mail-e', type: 'email', autocomplete: 'email', maxlength: '254', 'data-testid': 'sb-transcript-email' });
    var mailForm = h('form', { 'data-testid': 'sb-transcript-form', hidden: true }, [
      h('label', { for: 'sb-mail-e', text: S.email }),
      h('div', { class: 'sb-mail' }, [mailInput, h('button', { type: 'submit', class: 'sb-primary', 'data-testid': 'sb-transcript-send', text: S.mailSend })])
    ]);
    var mailDone = h('p', { role: 'status', 'data-testid': 'sb-transcript-done' });
    var problem = h('div', { class: 'sb-error', role: 'alert', 'data-testid': 'sb-after-error', hidden: true });
    var box = h('div', { class: 'sb-after', 'data-testid': 'sb-after', hidden: true }, [rateForm, rateDone, mailOpen, mailForm, mailDone, problem]);

    rateForm.addEventListener('submit', function (e) {
      e.preventDefault();
      rate();
    });
    mailForm.addEventListener('submit', function (e) {
      e.preventDefault();
      mail();
    });

    function pick(v) {
      choice = v;
      good.setAttribute('aria-pressed', v === 'good' ? 'true' : 'false');
      bad.setAttribute('aria-pressed', v === 'bad' ? 'true' : 'false');
      send.disabled = busy;
    }

    function showMail() {
      mailOpen.hidden = true;
      mailForm.hidden = false;
      if (!mailInput.value) mailInput.value = ctx.email() || '';
      mailInput.focus();
    }

    function fail(message) {
      problem.textContent = message;
      problem.hidden = !message;
    }

    /** POSTs `body` to the chat's after-chat `path`; resolves with the HTTP status. */
    function call(path, body) {
      var c = ctx.chat();
      return fetch(ctx.base + '/api/visitor/chats/' + encodeURIComponent(c.id) + '/' + path, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: 'Bearer ' + ctx.token() },
        body: JSON.stringify(body),
        credentials: 'omit'
      }).then(function (r) { return r.status; }, function () { return 0; });
    }

    function rate() {
      var c = ctx.chat();
      if (!c || !choice || busy) return;
      busy = true;
      send.disabled = true;
      fail('');
      call('rating', { rating: choice, comment: comment.value.trim() || null }).then(function (status) {
        busy = false;
        // 409: rated already (from another tab): as good as done.
        if (status === 201 || status === 409) {
          c.rated = choice;
          ctx.saved();
        } else {
          fail(status === 404 ? S.rateClosed : status === 429 ? S.tooMany : S.notConnected);
        }
        render();
      });
    }

    function mail() {
      var c = ctx.chat();
      var email = mailInput.value.trim();
      if (!c || busy) return;
      if (!/^[^\s@]+@[^\s@]+\.[^\s@.]+$/.test(email)) {
        fail(S.invalidEmail);
        return;
      }
      busy = true;
      fail('');
      call('transcript', { email: email }).then(function (status) {
        busy = false;
        if (status === 200) {
          c.mailed = email;
          ctx.saved();
        } else {
          fail(status === 404 ? S.mailClosed : status === 429 ? S.tooMany : status === 400 ? S.invalidEmail : S.mailFailed);
        }
        render();
      });
    }

    /** Shown under "The chat has ended" of a chat an agent joined. */
    function render() {
      var c = ctx.chat();
      box.hidden = !(c && c.phase === 'ended' && c.joined && !c.left);
      if (box.hidden) return;
      rateForm.hidden = !!c.rated;
      rateDone.hidden = !c.rated;
      rateDone.textContent = c.rated ? S.rateThanks : '';
      send.disabled = busy || !choice;
      var canMail = ctx.canMail();
      mailOpen.hidden = !canMail || !!c.mailed || !mailForm.hidden;
      if (!canMail || c.mailed) mailForm.hidden = true;
      mailDone.hidden = !c.mailed;
      mailDone.textContent = c.mailed ? fmt(S.mailSent, { email: c.mailed }) : '';
    }

    /** A new chat starts with a fresh form. */
    function reset() {
      choice = null;
      pick(null);
      comment.value = '';
      mailInput.value = '';
      mailForm.hidden = true;
      fail('');
    }

    return { box: box, render: render, reset: reset };
  }

  return { STRINGS: STRINGS, CSS: CSS, create: create };
})();
