/* Switchboard widget, "nobody is there": whether the queue is open (queue_status, pushed live),
 * the leave-a-message form (offline message), the wait estimate and, after chat.max_wait_ms in
 * the queue, the offer to leave a message instead, keeping what the visitor typed. Served
 * before widget.js in the same function scope (see src/web/README.md); widget.js calls
 * SbOffline.create() and hands it the pieces it needs. Text is only ever set with textContent. */
var SbOffline = (function () {
  'use strict';

  var STRINGS = {
    leaveButton: 'Leave us a message',
    offlineIntro: 'Nobody is available right now. Leave a message and we will answer by e-mail.',
    message: 'Message',
    sendMessage: 'Send message',
    sendingMessage: 'Sending…',
    messageLeft: 'Thank you! We got your message and will answer by e-mail.',
    leaveInstead: 'Leave a message instead',
    waitedLong: 'Sorry for the wait. You can keep waiting or leave us a message.',
    estimate: 'Usual wait: {range}',
    underMinute: 'under a minute',
    fewMinutes: 'a few minutes',
    aboutMinutes: 'about {n} minutes',
    overQuarter: 'more than 15 minutes',
    leftQueue: 'You left the queue.',
    messageRequired: 'Please write a message.',
    emailRequiredMsg: 'Please enter your e-mail address so we can answer.',
    backToChat: 'Back'
  };

  var CSS = '.sb-wait{margin:4px 0;text-align:center;color:#5f6b7a;font-size:13px}' +
    '.sb-wait .sb-secondary{margin-top:8px}' +
    '.sb-offline p{margin:0 0 6px}';

  /** "a few minutes" style ranges: honest about the spread, never false precision. */
  function range(ms, S, fmt) {
    var min = ms / 60000;
    if (min < 1) return S.underMinute;
    if (min < 5) return S.fewMinutes;
    if (min <= 15) return fmt(S.aboutMinutes, { n: Math.round(min / 5) * 5 });
    return S.overQuarter;
  }

  /**
   * ctx: { h, S, fmt, field(name, label, type), send(frame) -> bool, queue, session (storage),
   *        chat() -> the widget's chat or null, chatValues() -> {name,email,question},
   *        changed() (re-render), forgetChat() }
   */
  function create(ctx) {
    var h = ctx.h, S = ctx.S, fmt = ctx.fmt;
    var state = {
      info: null, // last queue_status
      mode: null, // null | 'message' (form shown) | 'sent'
      sending: false,
      fromChat: null, // the waiting chat the visitor gave up on
      estimate: null // ms, from the last queued frame
    };
    var timer = null;

    var fName = ctx.field('name', S.name, 'text');
    var fEmail = ctx.field('email', S.email, 'email');
    var fMessage = ctx.field('message', S.message, 'textarea');
    [fName, fEmail, fMessage].forEach(function (f) {
      f.input.id = 'sb-o-' + f.input.name;
      f.input.setAttribute('data-testid', 'sb-offline-' + f.input.name);
      f.label.setAttribute('for', f.input.id);
    });
    [fEmail, fMessage].forEach(function (f) {
      f.input.required = true;
      f.input.setAttribute('aria-required', 'true');
      var opt = f.label.querySelector('.sb-opt');
      if (opt) f.label.removeChild(opt);
    });
    var intro = h('p', { 'data-testid': 'sb-offline-intro', text: S.offlineIntro });
    var problem = h('div', { class: 'sb-error', role: 'alert', 'data-testid': 'sb-offline-error', hidden: true });
    var submit = h('button', { type: 'submit', class: 'sb-primary', 'data-testid': 'sb-offline-submit', text: S.sendMessage });
    var form = h('form', { class: 'sb-form sb-offline', 'data-testid': 'sb-offline-form', novalidate: true }, [
      intro, fName.label, fName.input, fEmail.label, fEmail.input, fMessage.label, fMessage.input, problem, submit
    ]);
    var thanks = h('div', { class: 'sb-ended', role: 'status', 'data-testid': 'sb-offline-sent' }, [
      h('p', { text: S.messageLeft }),
      h('button', { type: 'button', class: 'sb-secondary', 'data-testid': 'sb-offline-back', text: S.backToChat, onclick: function () { state.mode = null; ctx.changed(); } })
    ]);
    var box = h('div', { hidden: true }, [form, thanks]);
    form.addEventListener('submit', function (e) {
      e.preventDefault();
      leave();
    });

    var waitText = h('p', { 'data-testid': 'sb-wait-estimate' });
    var longText = h('p', { 'data-testid': 'sb-waited-long', text: S.waitedLong });
    var instead = h('button', { type: 'button', class: 'sb-secondary', 'data-testid': 'sb-leave-instead', text: S.leaveInstead, onclick: function () { giveUp(); } });
    var waitBox = h('div', { class: 'sb-wait', role: 'status', hidden: true }, [waitText, longText, instead]);

    function show(msg) {
      problem.textContent = msg;
      problem.hidden = !msg;
    }

    function queuedSince(id) {
      var key = 'sb.qstart.' + id;
      var t = SbSocket.load(ctx.session, key, null);
      if (!t) {
        t = Date.now();
        SbSocket.save(ctx.session, key, t);
      }
      return t;
    }

    function maxWait() {
      return state.info && state.info.max_wait_ms > 0 ? state.info.max_wait_ms : 0;
    }

    /** The visitor gave up waiting: the message form, with what they typed. */
    function giveUp() {
      var c = ctx.chat();
      var v = ctx.chatValues();
      state.fromChat = c && c.phase === 'queued' ? c.id : null;
      if (v.name && !fName.input.value) fName.input.value = v.name;
      if (v.email && !fEmail.input.value) fEmail.input.value = v.email;
      if (v.question && !fMessage.input.value) fMessage.input.value = v.question;
      state.mode = 'message';
      ctx.changed();
      fMessage.input.focus();
    }

    function leave() {
      var email = fEmail.input.value.trim();
      var text = fMessage.input.value.trim();
      if (!email || !/^[^\s@]+@[^\s@]+\.[^\s@.]+$/.test(email)) return show(email ? S.invalidEmail : S.emailRequiredMsg);
      if (!text) return show(S.messageRequired);
      show('');
      var frame = { type: 'leave_message', queue: ctx.queue, name: fName.input.value.trim() || null, email: email, message: text, page_url: location.href };
      if (state.fromChat) frame.chat_id = state.fromChat;
      if (!ctx.send(frame)) return show(S.notConnected);
      state.sending = true;
      ctx.changed();
    }

    return {
      /** Elements widget.js places in its body: the offline box and, under the queue position, the wait box. */
      box: box,
      waitBox: waitBox,

      /** Whether the offline box replaces the chat pane's body now. */
      active: function (phase) {
        if (state.mode) return true;
        return phase === 'form' && !!state.info && !state.info.open;
      },

      /** The chat button's label. */
      buttonLabel: function (phase) {
        return phase === 'form' && state.info && !state.info.open ? S.leaveButton : S.button;
      },

      render: function (phase) {
        var on = this.active(phase);
        box.hidden = !on;
        form.hidden = state.mode === 'sent';
        thanks.hidden = state.mode !== 'sent';
        submit.disabled = state.sending;
        submit.textContent = state.sending ? S.sendingMessage : S.sendMessage;
        intro.textContent = (state.info && state.info.offline_text) || S.offlineIntro;
        var c = ctx.chat();
        waitBox.hidden = on || phase !== 'queued';
        clearTimeout(timer);
        if (!waitBox.hidden && c) {
          waitText.textContent = state.estimate != null ? fmt(S.estimate, { range: range(state.estimate, S, fmt) }) : '';
          waitText.hidden = state.estimate == null;
          var left = maxWait() ? queuedSince(c.id) + maxWait() - Date.now() : Infinity;
          var long = left <= 0;
          longText.hidden = !long;
          instead.hidden = !long;
          if (!long && left !== Infinity) timer = setTimeout(ctx.changed, Math.min(left + 50, 2147483000));
        }
      },

      /** Frames this module handles; true when consumed. */
      onFrame: function (f) {
        switch (f.type) {
          case 'queue_status':
            state.info = f;
            ctx.changed();
            return true;
          case 'queued':
            state.estimate = typeof f.estimated_wait_ms === 'number' ? f.estimated_wait_ms : null;
            queuedSince(f.chat_id);
            return false;
          case 'message_left':
            state.sending = false;
            state.mode = 'sent';
            fMessage.input.value = '';
            if (state.fromChat) {
              SbSocket.save(ctx.session, 'sb.qstart.' + state.fromChat, null);
              state.fromChat = null;
              ctx.forgetChat();
            }
            ctx.changed();
            return true;
          case 'error':
            if (state.sending && !f.ref) {
              state.sending = false;
              show(f.message || S.notConnected);
              ctx.changed();
              return true;
            }
            return false;
          default:
            return false;
        }
      },

      /** The socket is (re)connected: follow the queue's open state. */
      welcome: function () {
        state.sending = false;
        ctx.send({ type: 'watch_queue', queue: ctx.queue });
      },

      /** The visitor starts over (new chat, or closes the thanks). */
      reset: function () {
        state.mode = null;
        state.fromChat = null;
      }
    };
  }

  return { STRINGS: STRINGS, CSS: CSS, create: create };
})();
