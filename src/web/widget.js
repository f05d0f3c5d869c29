/* Switchboard visitor widget. Embed with one tag:
 *   <script src="https://NODE/widget.js" data-queue="general" data-required="name,email" async></script>
 * The node serves this file concatenated after shared/socket.js, shared/transcript.js,
 * widget-offline.js and widget-look.js (texts and style), all inside one function scope (see
 * src/web/README.md), so the page gets no globals but `SwitchboardWidget`. Everything renders
 * inside a shadow root: the page's CSS cannot break it, and its CSS cannot leak out. Visitor
 * and agent text is only ever set with textContent. */
(function () {
  'use strict';

  var STRINGS = SbWidgetLook.STRINGS;

  if (window.__switchboardWidgetLoaded) return;
  window.__switchboardWidgetLoaded = true;

  var user = window.SwitchboardWidget || {};
  Object.keys(SbOffline.STRINGS).forEach(function (k) { STRINGS[k] = SbOffline.STRINGS[k]; });
  var S = {};
  Object.keys(STRINGS).forEach(function (k) { S[k] = STRINGS[k]; });
  if (user.strings) Object.keys(user.strings).forEach(function (k) { if (typeof user.strings[k] === 'string') S[k] = user.strings[k]; });

  function fmt(s, vars) {
    return s.replace(/\{(\w+)\}/g, function (m, k) { return vars[k] != null ? String(vars[k]) : m; });
  }

  // ---- configuration from the script tag ----

  var script = document.currentScript;
  if (!script || !/widget\.js/.test(script.src || '')) {
    var all = document.querySelectorAll('script[src*="widget.js"]');
    script = all[all.length - 1];
  }
  var src = new URL(script ? script.src : '/widget.js', location.href);
  var base = src.href.replace(/\/widget\.js(?:[?#].*)?$/, '');
  var wsBase = base.replace(/^http/, 'ws');
  var data = function (k) { return script ? script.getAttribute('data-' + k) : null; };
  var queue = user.queue || data('queue') || null;
  var required = (user.required || data('required') || '').split(',').map(function (s) { return s.trim(); }).filter(Boolean);

  var local = SbSocket.storageOf('localStorage');
  var session = SbSocket.storageOf('sessionStorage');
  var TOKEN_KEY = 'sb.visitor';
  var CHAT_KEY = 'sb.chat';
  var OPEN_KEY = 'sb.open';
  var LOG_PREFIX = 'sb.log.';
  var LOG_CAP = 300;
  var INVITE_KEY = 'sb.invite';

  function getToken() {
    try { return local ? local.getItem(TOKEN_KEY) : memToken; } catch (e) { return memToken; }
  }
  var memToken = null;
  function setToken(t) {
    memToken = t;
    try { if (local) local.setItem(TOKEN_KEY, t); } catch (e) { /* memory only */ }
  }

  // ---- state ----

  var st = {
    chat: null, // { id, phase: 'queued' | 'active' | 'ended', position, agent }
    requesting: false,
    live: {}, // chat ids resumed on the current socket
    from: {}, // chat id -> our last seq when the resume was sent (older entries are replays)
    sent: {}, // receipts sent: 'delivered' / 'read' -> seq
    welcomed: false,
    note: '', // transient status (an upload)
    invite: null, // the invitation on show
    open: !!SbSocket.load(session, OPEN_KEY, false)
  };
  var outbox = new SbSocket.Outbox(session, 'sb.outbox');
  var transcript = null;
  var ui = null;
  var offline = null; // SbOffline (widget-offline.js): queue open state, leave a message

  // ---- the DOM ----

  var CSS = SbWidgetLook.CSS;

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

  function field(name, label, type) {
    var id = 'sb-f-' + name;
    var req = required.indexOf(name) !== -1;
    var lab = h('label', { for: id }, [document.createTextNode(label + ' ')]);
    if (!req) lab.appendChild(h('span', { class: 'sb-opt', text: S.optional }));
    var input = type === 'textarea'
      ? h('textarea', { id: id, name: name, rows: '3', 'data-testid': 'sb-' + name, maxlength: '4000', required: req, 'aria-required': req ? 'true' : null })
      : h('input', { id: id, name: name, type: type, 'data-testid': 'sb-' + name, maxlength: name === 'email' ? '254' : '100', autocomplete: name === 'email' ? 'email' : 'name', required: req, 'aria-required': req ? 'true' : null });
    return { label: lab, input: input };
  }

  function build() {
    var host = h('div', { id: 'switchboard-widget', 'data-testid': 'sb-widget' });
    var root = host.attachShadow ? host.attachShadow({ mode: 'open' }) : host;
    // A constructed sheet is not blocked by a host page's strict style-src CSP; <style> otherwise.
    var sheet = null;
    try {
      if (root !== host && 'adoptedStyleSheets' in root && window.CSSStyleSheet) {
        sheet = new CSSStyleSheet();
        sheet.replaceSync(CSS);
        root.adoptedStyleSheets = [sheet];
      }
    } catch (e) { sheet = null; }
    if (!sheet) root.appendChild(h('style', { text: CSS }));

    var badge = h('span', { class: 'sb-badge', hidden: true, 'aria-hidden': 'true' });
    var buttonLabel = h('span', { text: S.button });
    var button = h('button', { type: 'button', class: 'sb-button', 'data-testid': 'sb-chat-button', 'aria-expanded': 'false', 'aria-controls': 'sb-pane' }, [buttonLabel, badge]);

    var fName = field('name', S.name, 'text');
    var fEmail = field('email', S.email, 'email');
    var fQuestion = field('question', S.question, 'textarea');
    var formError = h('div', { class: 'sb-error', role: 'alert', 'data-testid': 'sb-form-error', hidden: true });
    var submit = h('button', { type: 'submit', class: 'sb-primary', 'data-testid': 'sb-submit', text: S.start });
    var form = h('form', { class: 'sb-form', 'data-testid': 'sb-form', novalidate: true }, [
      h('p', { text: S.intro }), fName.label, fName.input, fEmail.label, fEmail.input, fQuestion.label, fQuestion.input, formError, submit
    ]);

    var queueBox = h('div', { class: 'sb-queue', 'data-testid': 'sb-queue-position', role: 'status', hidden: true });
    var log = h('ol', { class: 'sb-log', role: 'log', 'aria-live': 'polite', 'aria-label': S.messages, 'data-testid': 'sb-messages' });
    var endedText = h('p', { 'data-testid': 'sb-ended-text', text: S.ended });
    offline = SbOffline.create({
      h: h, S: S, fmt: fmt, field: field, queue: queue, session: session,
      send: function (f) { return conn.send(f); },
      chat: function () { return st.chat; },
      chatValues: function () { return { name: fName.input.value.trim(), email: fEmail.input.value.trim(), question: fQuestion.input.value.trim() }; },
      changed: function () { render(); },
      forgetChat: function () { forgetChat(); }
    });
    var endedBox = h('div', { class: 'sb-ended', 'data-testid': 'sb-ended', hidden: true }, [
      endedText,
      h('button', { type: 'button', class: 'sb-secondary', 'data-testid': 'sb-new-chat', text: S.newChat, onclick: newChat })
    ]);
    var body = h('div', { class: 'sb-body' }, [offline.box, form, queueBox, offline.waitBox, log, endedBox]);

    var input = h('textarea', { class: 'sb-input', 'data-testid': 'sb-input', 'aria-label': S.input, placeholder: S.input, maxlength: '4000', rows: '1' });
    var send = h('button', { type: 'submit', class: 'sb-primary sb-send', 'data-testid': 'sb-send', text: S.send });
    var file = h('input', { type: 'file', hidden: true, tabindex: '-1', 'data-testid': 'sb-file' });
    var attach = h('button', { type: 'button', class: 'sb-attach', 'aria-label': S.attach, title: S.attach, 'data-testid': 'sb-attach', text: '+', onclick: function () { file.click(); } });
    file.addEventListener('change', function () {
      upload(file.files && file.files[0]);
      file.value = '';
    });
    var compose = h('form', { class: 'sb-compose', hidden: true }, [attach, file, input, send]);
    var typing = h('div', { class: 'sb-typing', 'data-testid': 'sb-typing', 'aria-live': 'polite', hidden: true });
    var end = h('button', { type: 'button', class: 'sb-secondary', 'data-testid': 'sb-end', text: S.end, onclick: endChat });
    var foot = h('div', { class: 'sb-foot', hidden: true }, [h('span'), end]);

    var status = h('div', { class: 'sb-status', 'data-testid': 'sb-status', role: 'status', 'aria-live': 'polite' });
    var error = h('div', { class: 'sb-error', 'data-testid': 'sb-error', role: 'alert', hidden: true });
    var closeBtn = h('button', { type: 'button', class: 'sb-x', 'aria-label': S.close, 'data-testid': 'sb-close', text: '×', onclick: function () { setOpen(false); } });
    var title = h('h2', { id: 'sb-title', text: S.title });
    var pane = h('section', { id: 'sb-pane', class: 'sb-pane', role: 'dialog', 'aria-labelledby': 'sb-title', 'data-testid': 'sb-pane', hidden: true }, [
      h('div', { class: 'sb-head' }, [title, closeBtn]), status, error, body, typing, compose, foot
    ]);

    var inviteText = h('p', { id: 'sb-inv-t', 'data-testid': 'sb-invitation-text' });
    var inviteMsg = h('p', { 'data-testid': 'sb-invitation-message' });
    var invite = h('section', { class: 'sb-invite', role: 'dialog', 'aria-labelledby': 'sb-inv-t', 'aria-live': 'polite', 'data-testid': 'sb-invitation', hidden: true }, [
      inviteText, inviteMsg,
      h('button', { type: 'button', class: 'sb-primary', 'data-testid': 'sb-invitation-accept', text: S.accept, onclick: function () { answerInvite(true); } }),
      h('button', { type: 'button', class: 'sb-secondary', 'data-testid': 'sb-invitation-decline', text: S.decline, onclick: function () { answerInvite(false); } })
    ]);
    invite.addEventListener('keydown', function (e) {
      if (e.key === 'Escape') {
        e.preventDefault();
        answerInvite(false);
      }
    });
    root.appendChild(invite);

    root.appendChild(pane);
    root.appendChild(button);
    document.body.appendChild(host);

    button.addEventListener('click', function () { setOpen(!st.open); });
    pane.addEventListener('keydown', function (e) {
      if (e.key === 'Escape') {
        e.preventDefault();
        setOpen(false);
      }
    });
    form.addEventListener('submit', function (e) {
      e.preventDefault();
      requestChat();
    });
    compose.addEventListener('submit', function (e) {
      e.preventDefault();
      sendMessage();
    });
    input.addEventListener('input', function () { setTyping(!!input.value.trim()); });
    input.addEventListener('keydown', function (e) {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        sendMessage();
      }
    });

    return {
      host: host, button: button, badge: badge, pane: pane, status: status, error: error, form: form,
      fields: { name: fName.input, email: fEmail.input, question: fQuestion.input },
      formError: formError, submit: submit, queueBox: queueBox, log: log, endedBox: endedBox, endedText: endedText, body: body,
      buttonLabel: buttonLabel, title: title,
      compose: compose, input: input, send: send, foot: foot, end: end, typing: typing,
      invite: invite, inviteText: inviteText, inviteMsg: inviteMsg
    };
  }

  // ---- rendering ----

  var errorTimer = null;
  /** Shows `message` in the error line; for 8 s, or until the next message when `keep`. */
  function showError(message, keep) {
    ui.error.textContent = message;
    ui.error.hidden = false;
    clearTimeout(errorTimer);
    if (!keep) errorTimer = setTimeout(function () { ui.error.hidden = true; }, 8000);
  }

  function setOpen(open, quiet) {
    st.open = open;
    SbSocket.save(session, OPEN_KEY, open ? true : null);
    ui.pane.hidden = !open;
    ui.button.setAttribute('aria-expanded', open ? 'true' : 'false');
    if (open) {
      ui.badge.hidden = true;
      render();
      receipts();
      if (!quiet) focusFirst();
    } else if (ui.pane.contains(document.activeElement) || (ui.host.shadowRoot && ui.host.shadowRoot.activeElement)) {
      ui.button.focus();
    }
  }

  function focusFirst() {
    var phase = st.chat ? st.chat.phase : 'form';
    if (phase === 'active') ui.input.focus();
    else if (phase === 'form' || !st.chat) ui.fields.name.focus();
    else if (phase === 'ended') ui.endedBox.querySelector('button').focus();
    else ui.end.focus();
  }

  function render() {
    var c = st.chat;
    var phase = c ? c.phase : 'form';
    var off = offline.active(phase);
    offline.render(phase);
    ui.buttonLabel.textContent = offline.buttonLabel(phase);
    ui.title.textContent = off ? S.leaveButton : S.title;
    if (off) phase = 'offline';
    ui.form.hidden = phase !== 'form';
    ui.submit.disabled = st.requesting;
    ui.submit.textContent = st.requesting ? S.requesting : S.start;
    ui.queueBox.hidden = phase !== 'queued';
    if (phase === 'queued') ui.queueBox.textContent = c.position > 0 ? fmt(S.queued, { n: c.position }) : S.waiting;
    ui.log.hidden = phase === 'form';
    ui.compose.hidden = phase !== 'active';
    ui.foot.hidden = !(phase === 'queued' || phase === 'active');
    ui.end.textContent = phase === 'queued' ? S.cancel : S.end;
    ui.endedBox.hidden = phase !== 'ended';
    ui.endedText.textContent = c && c.left ? S.leftQueue : S.ended;
    renderStatus();
  }

  var connState = 'connecting';
  function renderStatus() {
    var c = st.chat;
    var text = '';
    if (connState !== 'open' && (st.welcomed || st.open)) text = st.welcomed ? S.reconnecting : S.connecting;
    else if (st.note) text = st.note;
    else if (c && c.phase === 'active' && c.agent) text = fmt(S.chattingWith, { name: c.agent });
    ui.status.textContent = text;
  }

  function scrollDown() {
    ui.body.scrollTop = ui.body.scrollHeight;
  }

  // ---- chat state and persistence ----

  function logKey(id) { return LOG_PREFIX + id; }

  function setChat(id, phase) {
    if (!st.chat || st.chat.id !== id) {
      st.chat = { id: id, phase: phase, position: 0, agent: '' };
      transcript.clear();
      var cached = SbSocket.load(session, logKey(id), null);
      if (cached && Array.isArray(cached.entries)) cached.entries.forEach(function (e) { transcript.add(e); });
      if (cached && cached.rcpt) ['delivered', 'read'].forEach(function (k) { if (cached.rcpt[k]) transcript.receipt(cached.rcpt[k], k); });
      st.sent = {};
      outbox.pending(id).forEach(function (i) { transcript.pending(i); });
      SbSocket.save(local, CHAT_KEY, id);
      scrollDown();
    } else {
      st.chat.phase = phase;
    }
    render();
  }

  function forgetChat() {
    if (st.chat) {
      SbSocket.save(session, logKey(st.chat.id), null);
      outbox.dropChat(st.chat.id);
    }
    st.chat = null;
    SbSocket.save(local, CHAT_KEY, null);
    transcript.clear();
    render();
  }

  function cacheLog() {
    if (!st.chat) return;
    var entries = transcript.entries.slice(-LOG_CAP);
    SbSocket.save(session, logKey(st.chat.id), { phase: st.chat.phase, agent: st.chat.agent, entries: entries, rcpt: transcript.rcpt });
  }

  /** Asks the node to replay what came after our last entry, then go live. */
  function resume(id) {
    var last = st.chat && st.chat.id === id ? transcript.lastSeq() : '';
    st.from[id] = last;
    conn.send({ type: 'resume', chat_id: id, last_seq: last });
  }

  // ---- actions ----

  function requestChat() {
    var values = {};
    var problem = null;
    ['name', 'email', 'question'].forEach(function (k) {
      var v = ui.fields[k].value.trim();
      values[k] = v || null;
      var invalid = false;
      if (!v && required.indexOf(k) !== -1) {
        problem = problem || fmt(S.required, { field: S[k] });
        invalid = true;
      } else if (k === 'email' && v && !/^[^\s@]+@[^\s@]+\.[^\s@.]+$/.test(v)) {
        problem = problem || S.invalidEmail;
        invalid = true;
      }
      ui.fields[k].setAttribute('aria-invalid', invalid ? 'true' : 'false');
    });
    if (problem) {
      ui.formError.textContent = problem;
      ui.formError.hidden = false;
      return;
    }
    ui.formError.hidden = true;
    if (!conn.send({ type: 'request_chat', name: values.name, email: values.email, question: values.question, queue: queue })) {
      ui.formError.textContent = S.notConnected;
      ui.formError.hidden = false;
      return;
    }
    st.requesting = true;
    render();
  }

  function sendMessage() {
    var text = ui.input.value.trim();
    if (!text || !st.chat || st.chat.phase !== 'active') return;
    var item = outbox.add(st.chat.id, text);
    transcript.pending(item);
    ui.input.value = '';
    setTyping(false);
    scrollDown();
    if (st.live[st.chat.id]) conn.send({ type: 'send', chat_id: item.chat_id, client_msg_id: item.client_msg_id, text: item.text });
  }

  // Typing: "true" at most every 3 s while the composer has text, "false" after 4 s idle.
  var typingAt = 0;
  var typingTimer = null;
  function setTyping(on) {
    var c = st.chat;
    if (!c || c.phase !== 'active' || !st.live[c.id]) return;
    clearTimeout(typingTimer);
    if (on) {
      if (Date.now() - typingAt > 3000) {
        typingAt = Date.now();
        conn.send({ type: 'typing', chat_id: c.id, typing: true });
      }
      typingTimer = setTimeout(function () { setTyping(false); }, 4000);
    } else if (typingAt) {
      typingAt = 0;
      conn.send({ type: 'typing', chat_id: c.id, typing: false });
    }
  }

  var theirTypingTimer = null;
  function showTyping(on) {
    clearTimeout(theirTypingTimer);
    ui.typing.hidden = !on;
    ui.typing.textContent = on ? fmt(S.typing, { name: (st.chat && st.chat.agent) || S.agent }) : '';
    if (on) theirTypingTimer = setTimeout(function () { showTyping(false); }, 5000);
  }

  /** Tells the agent what arrived here: "read" while the pane is open and the page visible. */
  function receipts() {
    var c = st.chat;
    if (!c || !st.live[c.id]) return;
    var seq = transcript.lastTheirs();
    var state = st.open && document.visibilityState === 'visible' ? 'read' : 'delivered';
    if (!seq || SbSocket.compareSeq(seq, st.sent[state] || '') <= 0) return;
    if (conn.send({ type: 'receipt', chat_id: c.id, seq: seq, state: state })) st.sent[state] = seq;
  }
  document.addEventListener('visibilitychange', function () { if (ui) receipts(); });

  /** Sends a file as an entry of the chat (the entry arrives over the socket). */
  function upload(f) {
    var c = st.chat;
    if (!f || !c || c.phase !== 'active') return;
    st.note = fmt(S.uploading, { name: f.name });
    renderStatus();
    fetch(base + '/api/chats/' + encodeURIComponent(c.id) + '/files?name=' + encodeURIComponent(f.name), {
      method: 'POST',
      headers: { 'Content-Type': f.type || 'application/octet-stream', Authorization: 'Bearer ' + getToken() },
      body: f,
      credentials: 'omit'
    }).then(function (r) {
      if (r.ok) return;
      return r.json().catch(function () { return {}; }).then(function (j) {
        throw new Error((j && j.message) || 'HTTP ' + r.status);
      });
    }).catch(function (e) {
      showError(fmt(S.uploadFailed, { message: e.message }));
    }).then(function () {
      st.note = '';
      renderStatus();
    });
  }

  function fileHref(d) {
    return base + '/api/files/' + encodeURIComponent(d.id) + '?token=' + encodeURIComponent(getToken() || '');
  }

  // ---- invitations (proactive chat) ----

  var inviteTimer = null;
  function showInvite(inv) {
    clearTimeout(inviteTimer);
    var left = inv ? Number(inv.expires_at) - Date.now() : 0;
    if (!inv || left <= 0 || (st.chat && st.chat.phase !== 'ended')) inv = null;
    st.invite = inv;
    SbSocket.save(session, INVITE_KEY, inv);
    ui.invite.hidden = !inv;
    if (!inv) return;
    ui.inviteText.textContent = fmt(S.invited, { name: inv.agent_name || S.agent });
    ui.inviteMsg.textContent = inv.message || '';
    ui.inviteMsg.hidden = !inv.message;
    inviteTimer = setTimeout(function () { showInvite(null); }, left);
  }

  function answerInvite(yes) {
    var inv = st.invite;
    if (!inv) return;
    var id = inv.chat_id;
    if (!conn.send({ type: yes ? 'accept_invitation' : 'decline_invitation', chat_id: id })) {
      showError(S.notConnected);
      return;
    }
    showInvite(null);
    if (!yes) {
      ui.button.focus();
      return;
    }
    if (st.chat) forgetChat();
    setChat(id, 'active');
    st.chat.agent = inv.agent_name || '';
    resume(id);
    setOpen(true);
  }

  function endChat() {
    if (!st.chat) return;
    if (!conn.send({ type: 'end', chat_id: st.chat.id })) showError(S.notConnected);
  }

  function newChat() {
    offline.reset();
    forgetChat();
    focusFirst();
  }

  // ---- frames ----

  function onWelcome(f) {
    st.welcomed = true;
    st.live = {};
    st.requesting = false; // a request lost with the old socket can be sent again
    conn.send({ type: 'page_view', url: location.href, title: document.title, referrer: document.referrer });
    offline.welcome();
    // A site that knows its logged-in user vouches for the e-mail with a signature made by
    // its own server (see docs/widget.md): window.SwitchboardWidget.identify.
    var who = user.identify;
    if (who && who.email && who.signature) {
      conn.send({ type: 'identify', email: String(who.email), name: who.name ? String(who.name) : null, signature: String(who.signature) });
    }
    var chats = Array.isArray(f.chats) ? f.chats : [];
    var stored = SbSocket.load(local, CHAT_KEY, null);
    var pick = null;
    chats.forEach(function (c) { if (c.chat_id === stored) pick = c; });
    if (!pick) chats.forEach(function (c) { if (!pick && c.state !== 'ended') pick = c; });
    if (!pick) {
      // A visitor's welcome lists no ended chats. Ours ended while we were away (or we saw
      // it end): show it as ended; a resume fetches the last entries, or 4004 forgets it.
      if (st.chat) {
        if (st.chat.phase !== 'ended') {
          st.chat.phase = 'ended';
          cacheLog();
        }
        resume(st.chat.id);
      }
      render();
      return;
    }
    var phase = pick.state === 'active' ? 'active' : pick.state === 'ended' ? 'ended' : 'queued';
    if (st.chat && st.chat.id === pick.chat_id && st.chat.phase === 'active' && phase === 'queued') phase = 'active';
    setChat(pick.chat_id, phase);
    resume(pick.chat_id);
  }

  function onEntry(f) {
    if (!st.chat || f.chat_id !== st.chat.id || !f.entry) return;
    var e = f.entry;
    if (e.author === 'visitor' && e.client_msg_id) outbox.remove(e.client_msg_id);
    if (!transcript.add(e)) return;
    var id = f.chat_id;
    var newest = transcript.lastSeq() === e.seq;
    if (e.event === 'joined' && e.name && newest) {
      st.chat.agent = e.name;
      renderStatus();
    }
    cacheLog();
    scrollDown();
    if (e.kind === 'message' && e.author !== 'visitor') {
      showTyping(false);
      if (!st.open) ui.badge.hidden = false;
      receipts();
    }
    // A pushed page is followed when it comes live (or came while we were away), never when
    // an old one is replayed. The log is cached above, so the next page resumes after it.
    if (e.event === 'push_page' && newest && (st.live[id] || (st.from[id] && SbSocket.compareSeq(e.seq, st.from[id]) > 0))) {
      var url = SbTranscript.safeHref((e.data && e.data.url) || e.text);
      if (url && url !== location.href) location.assign(url);
    }
  }

  function onError(f) {
    var ref = f.ref;
    var code = f.code | 0;
    var item = ref ? outbox.find(ref) : null;
    if (item) {
      if (code === 4100 || code >= 4500) {
        setTimeout(function () { if (outbox.find(ref) && st.live[item.chat_id]) outbox.flush(conn, item.chat_id); }, 2000);
      } else {
        outbox.remove(ref);
        transcript.failed(ref, f.message);
      }
      return;
    }
    if (ref && st.chat && ref === st.chat.id) {
      if (code === 4007) {
        // Our cached log is ahead of the chat (Redis lost data): start over from the top.
        transcript.clear();
        SbSocket.save(session, logKey(ref), null);
        conn.send({ type: 'resume', chat_id: ref, last_seq: '' });
        return;
      }
      if (code === 4004 || code === 4005) {
        forgetChat();
        return;
      }
    }
    if (st.requesting && !ref) {
      st.requesting = false;
      ui.formError.textContent = f.message || S.notConnected;
      ui.formError.hidden = false;
      render();
      return;
    }
    // Ref-less errors are about frames the visitor did not ask for (page_view): not shown.
    if (ref && f.message) showError(f.message);
  }

  function onFrame(f) {
    if (offline.onFrame(f)) return;
    switch (f.type) {
      case 'welcome':
        onWelcome(f);
        break;
      case 'queued':
        st.requesting = false;
        if (!st.chat || st.chat.id !== f.chat_id) {
          setChat(f.chat_id, 'queued');
          resume(f.chat_id);
          if (st.open) focusFirst();
        } else if (st.chat.phase === 'queued' && !st.live[f.chat_id]) {
          resume(f.chat_id);
        }
        if (st.chat.phase === 'queued') {
          st.chat.position = Number(f.position) || 0;
          render();
        }
        break;
      case 'resumed':
        st.live[f.chat_id] = true;
        if (st.chat && st.chat.id === f.chat_id) {
          if (st.chat.phase === 'active') outbox.flush(conn, f.chat_id);
          else if (st.chat.phase === 'ended') outbox.dropChat(f.chat_id);
          receipts();
        }
        break;
      case 'typing':
        if (f.by !== 'visitor' && st.chat && st.chat.id === f.chat_id) showTyping(!!f.typing);
        break;
      case 'receipt':
        if (f.by !== 'visitor' && st.chat && st.chat.id === f.chat_id) {
          transcript.receipt(f.seq, f.state);
          cacheLog();
        }
        break;
      case 'invitation':
        showInvite(f);
        break;
      case 'entry':
        onEntry(f);
        break;
      case 'chat_started':
        if (st.chat && st.chat.id === f.chat_id && st.chat.phase !== 'ended') {
          var was = st.chat.phase;
          st.chat.phase = 'active';
          st.chat.agent = f.agent_name || '';
          cacheLog();
          render();
          if (was !== 'active' && st.open) ui.input.focus();
        }
        break;
      case 'chat_ended':
        if (st.invite && st.invite.chat_id === f.chat_id) showInvite(null);
        if (st.chat && st.chat.id === f.chat_id) {
          outbox.pending(f.chat_id).forEach(function (i) { transcript.failed(i.client_msg_id, ''); });
          outbox.dropChat(f.chat_id);
          // A visitor who cancels their own request reads their own wording.
          if (st.chat.phase === 'queued' && f.by === 'visitor') st.chat.left = true;
          st.chat.phase = 'ended';
          showTyping(false);
          cacheLog();
          render();
          scrollDown();
        }
        break;
      case 'chat_lost':
        // The service lost the chat (Redis lost its data): nothing to resume. Say so and
        // keep saying it; the visitor may start a new chat.
        if (st.chat && st.chat.id === f.chat_id) {
          forgetChat();
          showError(String(f.message || ''), true);
        }
        break;
      case 'ack': {
        outbox.remove(f.client_msg_id);
        transcript.acked(f.client_msg_id, f.seq);
        break;
      }
      case 'error':
        onError(f);
        break;
      case 'pong':
        break;
      default:
        break; // newer nodes may send frames this widget does not know yet
    }
  }

  // ---- the connection ----

  var sessionPromise = null;
  function startSession() {
    if (sessionPromise) return sessionPromise;
    sessionPromise = fetch(base + '/api/visitor/session', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ token: getToken() || null }),
      credentials: 'omit'
    }).then(function (r) {
      if (!r.ok) throw new Error('session ' + r.status);
      return r.json();
    }).then(function (j) {
      if (!j || typeof j.token !== 'string') throw new Error('session: no token');
      setToken(j.token);
      return j.token;
    });
    sessionPromise.then(function () { sessionPromise = null; }, function () { sessionPromise = null; });
    return sessionPromise;
  }

  var needSession = true;
  var conn = new SbSocket.Connection({
    url: function () {
      var t = getToken();
      var ready = needSession || !t ? startSession() : Promise.resolve(t);
      return ready.then(function (token) {
        needSession = false;
        return wsBase + '/ws/visitor?token=' + encodeURIComponent(token);
      });
    },
    onFrame: onFrame,
    onState: function (s, info) {
      connState = s;
      if (s !== 'open') st.live = {};
      if (s === 'stopped' && info.reason === 'origin') showError(S.unavailable);
      if (ui) renderStatus();
    },
    onUnauthorized: function () {
      // A refused upgrade or 4401: renew the session (same visitor id while the token is
      // valid, a new one otherwise), then reconnect.
      needSession = true;
      return true;
    }
  });

  function init() {
    ui = build();
    transcript = new SbTranscript.Transcript(ui.log, { me: 'visitor', prefix: 'sb-', strings: S, fileHref: fileHref });
    var stored = SbSocket.load(local, CHAT_KEY, null);
    if (stored) {
      // Shown from the tab's cache until welcome says where the chat stands.
      var cached = SbSocket.load(session, logKey(stored), null);
      setChat(stored, (cached && cached.phase) || 'queued');
      if (cached && cached.agent) st.chat.agent = cached.agent;
    }
    render();
    if (st.open) setOpen(true, true); // restored after a navigation: do not steal the page's focus
    showInvite(SbSocket.load(session, INVITE_KEY, null));
    conn.start();
  }

  if (document.body) init();
  else document.addEventListener('DOMContentLoaded', init);
})();
