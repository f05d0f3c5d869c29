/* Switchboard widget, its DOM: the element helper, the pre-chat fields and the whole widget built
 * inside a shadow root (the page's CSS cannot break it, and its CSS cannot leak out). Behaviour
 * stays in widget.js, which calls SbWidgetView.build() and gets the elements back. Served
 * before widget.js in the same function scope (see src/web/README.md). */
var SbWidgetView = (function () {
  'use strict';

  function h(tag, attrs, children) {
    var e = document.createElement(tag);
    if (attrs) Object.keys(attrs).forEach(function (k) {
      var v = attrs[k];
      if (v == null || v === false) return;
      if (k === 'text') e.textContent = v;
      else if (k === 'class') e.className = v;
      else if (k.slice(0, 2) === 'on') e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : v);
    });
    (children || []).forEach(function (c) { if (c) e.appendChild(c); });
    return e;
  }

  /** A labelled pre-chat (or leave-a-message) field; `required` lists the required names. */
  function fieldOf(S, required) {
    return function (name, label, type) {
      var id = 'sb-f-' + name;
      var req = required.indexOf(name) !== -1;
      var lab = h('label', { for: id }, [document.createTextNode(label + ' ')]);
      if (!req) lab.appendChild(h('span', { class: 'sb-opt', text: S.optional }));
      var input = type === 'textarea'
        ? h('textarea', { id: id, name: name, rows: '3', 'data-testid': 'sb-' + name, maxlength: '4000', required: req, 'aria-required': req ? 'true' : null })
        : h('input', { id: id, name: name, type: type, 'data-testid': 'sb-' + name, maxlength: name === 'email' ? '254' : '100', autocomplete: name === 'email' ? 'email' : 'name', required: req, 'aria-required': req ? 'true' : null });
      return { label: lab, input: input };
    };
  }

  /** Installs the style sheet: a constructed sheet is not blocked by a host page's strict
   * style-src CSP; a <style> element otherwise. */
  function style(root, host, css) {
    try {
      if (root !== host && 'adoptedStyleSheets' in root && window.CSSStyleSheet) {
        var sheet = new CSSStyleSheet();
        sheet.replaceSync(css);
        root.adoptedStyleSheets = [sheet];
        return;
      }
    } catch (e) { /* fall back below */ }
    root.appendChild(h('style', { text: css }));
  }

  /**
   * ctx: { S, css, required, on: { toggle, close, requestChat, sendMessage, typing(bool),
   *        endChat, newChat, answerInvite(bool) },
   *        parts(h, field, root) -> { offline, files, after } (the modules that build their own
   *        pieces, created once the shadow root exists) }
   */
  function build(ctx) {
    var S = ctx.S, on = ctx.on;
    var field = fieldOf(S, ctx.required);
    var host = h('div', { id: 'switchboard-widget', 'data-testid': 'sb-widget' });
    var root = host.attachShadow ? host.attachShadow({ mode: 'open' }) : host;
    style(root, host, ctx.css);
    var parts = ctx.parts(h, field, root);

    var badge = h('span', { class: 'sb-badge', hidden: true, 'aria-hidden': 'true' });
    var buttonLabel = h('span', { text: S.button });
    var button = h('button', { type: 'button', class: 'sb-button', 'data-testid': 'sb-chat-button', 'aria-expanded': 'false', 'aria-controls': 'sb-pane', onclick: on.toggle }, [buttonLabel, badge]);

    var fName = field('name', S.name, 'text');
    var fEmail = field('email', S.email, 'email');
    var fQuestion = field('question', S.question, 'textarea');
    var formError = h('div', { class: 'sb-error', role: 'alert', 'data-testid': 'sb-form-error', hidden: true });
    var submit = h('button', { type: 'submit', class: 'sb-primary', 'data-testid': 'sb-submit', text: S.start });
    var intro = h('p', { 'data-testid': 'sb-greeting', text: S.intro });
    var form = h('form', { class: 'sb-form', 'data-testid': 'sb-form', novalidate: true }, [
      intro, fName.label, fName.input, fEmail.label, fEmail.input, fQuestion.label, fQuestion.input, formError, submit
    ]);

    var queueText = h('p', { 'data-testid': 'sb-queue-position' });
    var echo = h('p', { class: 'sb-echo', 'data-testid': 'sb-question-echo', hidden: true });
    var queueBox = h('div', { class: 'sb-queue', role: 'status', hidden: true }, [queueText, echo]);
    var log = h('ol', { class: 'sb-log', role: 'log', 'aria-live': 'polite', 'aria-label': S.messages, 'data-testid': 'sb-messages' });
    var endedText = h('p', { 'data-testid': 'sb-ended-text', text: S.ended });
    var endedBox = h('div', { class: 'sb-ended', 'data-testid': 'sb-ended', hidden: true }, [
      endedText,
      parts.after.box,
      h('button', { type: 'button', class: 'sb-secondary', 'data-testid': 'sb-new-chat', text: S.newChat, onclick: on.newChat })
    ]);
    var body = h('div', { class: 'sb-body' }, [parts.offline.box, form, queueBox, parts.offline.waitBox, log, endedBox]);

    var input = h('textarea', { class: 'sb-input', 'data-testid': 'sb-input', 'aria-label': S.input, placeholder: S.input, maxlength: '4000', rows: '1' });
    var send = h('button', { type: 'submit', class: 'sb-primary sb-send', 'data-testid': 'sb-send', text: S.send });
    var file = parts.files.input;
    var attach = h('button', { type: 'button', class: 'sb-attach', 'aria-label': S.attach, title: S.attach, 'data-testid': 'sb-attach', text: '+', onclick: function () { file.click(); } });
    var compose = h('form', { class: 'sb-compose', hidden: true }, [attach, file, input, send]);
    var typing = h('div', { class: 'sb-typing', 'data-testid': 'sb-typing', 'aria-live': 'polite', hidden: true });
    var end = h('button', { type: 'button', class: 'sb-secondary', 'data-testid': 'sb-end', text: S.end, onclick: on.endChat });
    var foot = h('div', { class: 'sb-foot', hidden: true }, [h('span'), end]);

    var status = h('div', { class: 'sb-status', 'data-testid': 'sb-status', role: 'status', 'aria-live': 'polite' });
    var error = h('div', { class: 'sb-error', 'data-testid': 'sb-error', role: 'alert', hidden: true });
    var closeBtn = h('button', { type: 'button', class: 'sb-x', 'aria-label': S.close, 'data-testid': 'sb-close', text: '×', onclick: on.close });
    var title = h('h2', { id: 'sb-title', text: S.title });
    var pane = h('section', { id: 'sb-pane', class: 'sb-pane', role: 'dialog', 'aria-labelledby': 'sb-title', 'data-testid': 'sb-pane', hidden: true }, [
      h('div', { class: 'sb-head' }, [title, closeBtn]), status, error, body, typing, compose, foot
    ]);
    parts.files.bindDrop(pane);
    parts.files.bindPaste(input);

    var inviteText = h('p', { id: 'sb-inv-t', 'data-testid': 'sb-invitation-text' });
    var inviteMsg = h('p', { 'data-testid': 'sb-invitation-message' });
    var invite = h('section', { class: 'sb-invite', role: 'dialog', 'aria-labelledby': 'sb-inv-t', 'aria-live': 'polite', 'data-testid': 'sb-invitation', hidden: true }, [
      inviteText, inviteMsg,
      h('button', { type: 'button', class: 'sb-primary', 'data-testid': 'sb-invitation-accept', text: S.accept, onclick: function () { on.answerInvite(true); } }),
      h('button', { type: 'button', class: 'sb-secondary', 'data-testid': 'sb-invitation-decline', text: S.decline, onclick: function () { on.answerInvite(false); } })
    ]);
    invite.addEventListener('keydown', function (e) {
      if (e.key === 'Escape') {
        e.preventDefault();
        on.answerInvite(false);
      }
    });
    root.appendChild(invite);
    root.appendChild(pane);
    root.appendChild(button);
    document.body.appendChild(host);

    pane.addEventListener('keydown', function (e) {
      if (e.key === 'Escape') {
        e.preventDefault();
        on.close();
      }
    });
    form.addEventListener('submit', function (e) {
      e.preventDefault();
      on.requestChat();
    });
    compose.addEventListener('submit', function (e) {
      e.preventDefault();
      on.sendMessage();
    });
    input.addEventListener('input', function () { on.typing(!!input.value.trim()); });
    input.addEventListener('keydown', function (e) {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        on.sendMessage();
      }
    });

    return {
      host: host, root: root, button: button, badge: badge, pane: pane, status: status, error: error, form: form,
      fields: { name: fName.input, email: fEmail.input, question: fQuestion.input },
      formError: formError, submit: submit, queueBox: queueBox, queueText: queueText, echo: echo, log: log,
      endedBox: endedBox, endedText: endedText, body: body, buttonLabel: buttonLabel, title: title, intro: intro,
      compose: compose, input: input, send: send, foot: foot, end: end, typing: typing,
      invite: invite, inviteText: inviteText, inviteMsg: inviteMsg
    };
  }

  return { h: h, fieldOf: fieldOf, build: build };
})();
