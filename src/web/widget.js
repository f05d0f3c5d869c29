/* Switchboard visitor widget: its state, the frames from the node and the actions. Embed with:
 *   <script src="https://NODE/widget.js" data-queue="general" data-required="name,email" async></script>
 * The node serves this file last, after the shared modules and the widget's own (offline,
 * files, after-chat, invitations, typing and receipts, pre-chat form, session, look, view), all
 * inside one function scope (see src/web/README.md), so the page gets no globals but
 * `SwitchboardWidget`. Visitor and agent text is only ever set with textContent. */
(function () {
  'use strict';

  var STRINGS = SbWidgetLook.STRINGS;

  if (window.__switchboardWidgetLoaded) return;
  window.__switchboardWidgetLoaded = true;

  var user = window.SwitchboardWidget || {};
  [SbOffline, SbWidgetFiles, SbAfterChat].forEach(function (m) {
    Object.keys(m.STRINGS).forEach(function (k) { STRINGS[k] = m.STRINGS[k]; });
  });
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
  var CHAT_KEY = 'sb.chat';
  var OPEN_KEY = 'sb.open';
  var LOG_PREFIX = 'sb.log.';
  var LOG_CAP = 300;
  /** Messages a waiting visitor may write before an agent joins (sent on accept). */
  var QUEUED_CAP = 20;

  var visitorSession = SbVisitorSession.create({
    base: base, local: local,
    answered: function (j) {
      files.configure(j.files);
      st.canMail = j.transcript_mail === true;
      if (ui) render();
    }
  });
  var getToken = visitorSession.token;

  // ---- state ----

  var st = {
    chat: null, // { id, phase: 'queued' | 'active' | 'ended', position, agent }
    requesting: false,
    live: {}, // chat ids resumed on the current socket
    from: {}, // chat id -> our last seq when the resume was sent (older entries are replays)
    sent: {}, // receipts sent: 'delivered' / 'read' -> seq
    welcomed: false,
    note: '', // transient status (an upload)
    open: !!SbSocket.load(session, OPEN_KEY, false),
    canMail: false // the node can e-mail transcripts (session answer)
  };
  var outbox = new SbSocket.Outbox(session, 'sb.outbox');
  var transcript = null;
  var ui = null;
  var offline = null; // SbOffline (widget-offline.js): queue open state, leave a message

  // ---- the DOM (widget-view.js) ----

  var CSS = SbWidgetLook.CSS;
  var h = SbWidgetView.h;
  var files = null; // SbWidgetFiles (widget-files.js): picker, uploads, drop and paste, thumbnails
  var after = null; // SbAfterChat (widget-after.js): rating and transcript by e-mail

  function build() {
    return SbWidgetView.build({
      S: S, css: CSS, required: required,
      on: {
        toggle: function () { setOpen(!st.open); },
        close: function () { setOpen(false); },
        requestChat: requestChat, sendMessage: sendMessage, typing: setTyping,
        endChat: endChat, newChat: newChat, answerInvite: function (yes) { invites.answer(yes); }
      },
      parts: function (hh, field, root) {
        offline = SbOffline.create({
          h: hh, S: S, fmt: fmt, field: field, queue: queue, session: session,
          send: function (f) { return conn.send(f); },
          chat: function () { return st.chat; },
          chatValues: function () { return { name: ui.fields.name.value.trim(), email: ui.fields.email.value.trim(), question: ui.fields.question.value.trim() }; },
          changed: function () { render(); },
          forgetChat: function () { forgetChat(); }
        });
        files = SbWidgetFiles.create({
          h: hh, S: S, fmt: fmt, root: root, base: base, token: getToken,
          chat: function () { return st.chat; },
          showError: showError,
          note: function (text) { st.note = text; renderStatus(); }
        });
        after = SbAfterChat.create({
          h: hh, S: S, fmt: fmt, base: base, token: getToken,
          chat: function () { return st.chat; },
          email: function () { return (st.chat && st.chat.email) || prechat.contact().email || ''; },
          canMail: function () { return st.canMail; },
          saved: function () { cacheLog(); }
        });
        return { offline: offline, files: files, after: after };
      }
    });
  }

  // ---- the pre-chat form (widget-prechat.js) ----

  var prechat = SbPrechat.create({
    S: S, fmt: fmt, local: local, required: required, queue: queue,
    ui: function () { return ui; },
    send: function (f) { return conn.send(f); },
    asked: function (a) { st.asked = a; }
  });

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
      // The newest entries are what matters after a navigation or a reopen; a hidden pane
      // could not be scrolled while its log filled.
      scrollDown();
      receipts();
      if (!quiet) focusFirst();
    } else if (ui.pane.contains(document.activeElement) || (ui.host.shadowRoot && ui.host.shadowRoot.activeElement)) {
      ui.button.focus();
    }
  }

  function focusFirst() {
    var phase = st.chat ? st.chat.phase : 'form';
    if (phase === 'active' || phase === 'queued') ui.input.focus();
    else if (phase === 'form' || !st.chat) ui.fields.name.focus();
    else if (phase === 'ended') ui.endedBox.querySelector('[data-testid="sb-new-chat"]').focus();
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
    if (phase === 'queued') {
      ui.queueText.textContent = c.position > 0 ? fmt(S.queued, { n: c.position }) : S.waiting;
      ui.echo.textContent = c.question ? fmt(S.yourQuestion, { text: c.question }) : '';
      ui.echo.hidden = !c.question;
    }
    ui.log.hidden = phase === 'form';
    // A waiting visitor keeps writing: the messages wait in the outbox until an agent joins.
    ui.compose.hidden = phase !== 'active' && phase !== 'queued';
    ui.compose.querySelector('.sb-attach').hidden = phase !== 'active';
    ui.input.placeholder = phase === 'queued' ? S.inputQueued : S.input;
    ui.foot.hidden = !(phase === 'queued' || phase === 'active');
    ui.end.textContent = phase === 'queued' ? S.cancel : S.end;
    ui.endedBox.hidden = phase !== 'ended';
    ui.endedText.textContent = c && c.left ? S.leftQueue : S.ended;
    after.render();
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
      if (cached) ['agent', 'question', 'email', 'joined', 'rated', 'mailed', 'left'].forEach(function (k) { if (cached[k]) st.chat[k] = cached[k]; });
      if (cached && Array.isArray(cached.entries)) cached.entries.forEach(function (e) { transcript.add(e); });
      if (cached && cached.rcpt) ['delivered', 'read'].forEach(function (k) { if (cached.rcpt[k]) transcript.receipt(cached.rcpt[k], k); });
      st.sent = {};
      outbox.pending(id).forEach(function (i) { transcript.pending(i); });
      SbSocket.save(local, CHAT_KEY, id);
      scrollDown();
    } else {
      st.chat.phase = phase;
    }
    if (phase === 'active') st.chat.joined = true;
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
    var c = st.chat;
    SbSocket.save(session, logKey(c.id), {
      phase: c.phase, agent: c.agent, question: c.question, email: c.email, joined: c.joined,
      rated: c.rated, mailed: c.mailed, left: c.left, entries: entries, rcpt: transcript.rcpt
    });
  }

  /** Asks the node to replay what came after our last entry, then go live. */
  function resume(id) {
    var last = st.chat && st.chat.id === id ? transcript.lastSeq() : '';
    st.from[id] = last;
    conn.send({ type: 'resume', chat_id: id, last_seq: last });
  }

  // ---- actions ----

  function requestChat() {
    if (!prechat.submit()) return;
    st.requesting = true;
    render();
  }

  function sendMessage() {
    var text = ui.input.value.trim();
    var c = st.chat;
    if (!text || !c || (c.phase !== 'active' && c.phase !== 'queued')) return;
    if (c.phase === 'queued' && outbox.pending(c.id).length >= QUEUED_CAP) {
      showError(S.queuedFull);
      return;
    }
    var item = outbox.add(c.id, text);
    transcript.pending(item);
    ui.input.value = '';
    setTyping(false);
    scrollDown();
    if (c.phase === 'active' && st.live[c.id]) conn.send({ type: 'send', chat_id: item.chat_id, client_msg_id: item.client_msg_id, text: item.text });
  }

  // ---- typing and receipts (widget-signals.js) ----

  var signals = SbSignals.create({
    S: S, fmt: fmt,
    ui: function () { return ui; },
    chat: function () { return st.chat; },
    live: function (id) { return !!st.live[id]; },
    send: function (f) { return conn.send(f); },
    lastTheirs: function () { return transcript.lastTheirs(); },
    open: function () { return st.open; },
    sent: function () { return st.sent; }
  });
  var setTyping = signals.setTyping;
  var showTyping = signals.showTyping;
  var receipts = signals.receipts;
  document.addEventListener('visibilitychange', function () { if (ui) receipts(); });

  // ---- invitations (widget-invite.js) ----

  var invites = SbInvite.create({
    S: S, fmt: fmt, session: session,
    ui: function () { return ui; },
    chat: function () { return st.chat; },
    send: function (f) { return conn.send(f); },
    showError: showError,
    accepted: function (inv) {
      if (st.chat) forgetChat();
      setChat(inv.chat_id, 'active');
      st.chat.agent = inv.agent_name || '';
      resume(inv.chat_id);
      setOpen(true);
    }
  });

  function endChat() {
    if (!st.chat) return;
    if (!conn.send({ type: 'end', chat_id: st.chat.id })) showError(S.notConnected);
  }

  function newChat() {
    offline.reset();
    after.reset();
    forgetChat();
    ui.fields.question.value = '';
    prechat.fill();
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
          if (st.asked) {
            st.chat.question = st.asked.question || '';
            st.chat.email = st.asked.email || '';
            st.asked = null;
            cacheLog();
          }
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
        invites.show(f);
        break;
      case 'entry':
        onEntry(f);
        break;
      case 'chat_started':
        if (st.chat && st.chat.id === f.chat_id && st.chat.phase !== 'ended') {
          var was = st.chat.phase;
          st.chat.phase = 'active';
          st.chat.joined = true;
          st.chat.agent = f.agent_name || '';
          cacheLog();
          render();
          // What the visitor wrote while waiting goes out now, in order.
          if (was === 'queued' && st.live[f.chat_id]) outbox.flush(conn, f.chat_id);
          if (was !== 'active' && st.open) ui.input.focus();
        }
        break;
      case 'chat_ended':
        if (invites.isFor(f.chat_id)) invites.show(null);
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
          invites.chatEnded();
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

  var needSession = true;
  var conn = new SbSocket.Connection({
    url: function () {
      var t = getToken();
      var ready = needSession || !t ? visitorSession.start() : Promise.resolve(t);
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
    SbWidgetLook.load(base, ui.host, S, user.strings, function () {
      ui.intro.textContent = S.intro;
      render();
    });
    transcript = new SbTranscript.Transcript(ui.log, {
      me: 'visitor', prefix: 'sb-', strings: S, fileHref: files.href, fileThumb: files.thumb, filePreview: files.preview
    });
    prechat.fill();
    var stored = SbSocket.load(local, CHAT_KEY, null);
    if (stored) {
      // Shown from the tab's cache until welcome says where the chat stands.
      var cached = SbSocket.load(session, logKey(stored), null);
      setChat(stored, (cached && cached.phase) || 'queued');
      if (cached && cached.agent) st.chat.agent = cached.agent;
    }
    render();
    if (st.open) setOpen(true, true); // restored after a navigation: do not steal the page's focus
    invites.restore();
    conn.start();
  }

  if (document.body) init();
  else document.addEventListener('DOMContentLoaded', init);
})();
