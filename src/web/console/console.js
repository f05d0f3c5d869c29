// The agent console's entry point: login and session, the connection (shared reconnecting
// socket), availability, and the dispatch of server frames to offers, chats and the banner.

import { S, fmt, translatePage } from './strings.js';
import { api, setToken, ApiError } from './api.js';
import { Offers } from './offers.js';
import { askNotificationPermission, soundOn, setSound } from './notify.js';
import { Chats } from './chats.js';
import { History, CannedAdmin } from './history.js';
import { Visitors } from './visitors.js';
import { Waiting } from './waiting.js';
import { Inbox } from './inbox.js';
import { showRating } from './after-chat.js';
import { Admin } from './admin/admin.js';
import { Monitor } from './monitor.js';

const SESSION_KEY = 'sb.agent';
const $ = (sel) => document.querySelector(sel);
const byTestId = (id) => document.querySelector(`[data-testid="${id}"]`);

const wsBase = location.origin.replace(/^http/, 'ws');
const session = SbSocket.storageOf('sessionStorage');

let me = SbSocket.load(session, SESSION_KEY, null);
let conn = null;
let offers = null;
let chats = null;
let history = null;
let visitors = null;
let cannedAdmin = null;
let waiting = null;
let inbox = null;
let admin = null; // the Admin section, for admins only
let monitor = null;
let view = 'chats';

// ---- banner ----

let bannerTimer = null;
/** Shows `message` for 8 s, or until the next banner when `keep`. */
function showBanner(message, info = false, keep = false) {
  const b = byTestId('error-banner');
  b.textContent = message;
  b.classList.toggle('info', !!info);
  b.setAttribute('role', info ? 'status' : 'alert');
  b.hidden = false;
  clearTimeout(bannerTimer);
  if (keep) return;
  bannerTimer = setTimeout(() => {
    b.hidden = true;
  }, 8000);
}

// ---- login ----

function showLogin(message) {
  $('#app').hidden = true;
  $('#login').hidden = false;
  const err = byTestId('login-error');
  err.textContent = message || '';
  err.hidden = !message;
  byTestId('login-username').focus();
}

byTestId('login-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  askNotificationPermission();
  const username = byTestId('login-username').value.trim();
  const password = byTestId('login-password').value;
  const submit = byTestId('login-submit');
  submit.disabled = true;
  try {
    const res = await api('/api/agent/login', { method: 'POST', body: { username, password } });
    me = { token: res.token, agent: res.agent };
    SbSocket.save(session, SESSION_KEY, me);
    byTestId('login-password').value = '';
    startApp();
  } catch (err) {
    showLogin(err instanceof ApiError && err.status === 403 ? S.loginFailed : fmt(S.loginError, { message: err.message }));
  } finally {
    submit.disabled = false;
  }
});

function logout(message) {
  if (conn) conn.stop();
  SbSocket.save(session, SESSION_KEY, null);
  me = null;
  setToken(null);
  location.hash = '';
  // A fresh page drops every tab, card and timer of the old session.
  if (message) sessionStorage.setItem('sb.loginMessage', message);
  location.reload();
}

// Ends the session on the node first (every tab and node of this agent is signed out), then here.
// This tab's socket is stopped before, so its own 4401 is not taken for an expired session.
$('#logout').addEventListener('click', async () => {
  if (conn) conn.stop();
  try {
    await api('/api/agent/logout', { method: 'POST' });
  } catch (e) {
    /* the session may be over already; the console signs out either way */
  }
  logout();
});

// ---- sound ----

const soundToggle = byTestId('sound-toggle');
function showSound() {
  const on = soundOn();
  soundToggle.setAttribute('aria-pressed', on ? 'true' : 'false');
  soundToggle.textContent = on ? S.soundOn : S.soundOff;
}
soundToggle.addEventListener('click', () => {
  setSound(!soundOn());
  showSound();
});
showSound();

// ---- views ----

function showView(name) {
  view = name;
  for (const b of document.querySelectorAll('nav.views button')) b.setAttribute('aria-pressed', b.dataset.view === name ? 'true' : 'false');
  $('#view-chats').hidden = name !== 'chats';
  $('#view-visitors').hidden = name !== 'visitors';
  $('#view-history').hidden = name !== 'history';
  $('#view-canned').hidden = name !== 'canned';
  $('#view-admin').hidden = name !== 'admin';
  if (name === 'admin') admin.show();
  if (name === 'history') history.load();
  if (name === 'canned') cannedAdmin.load();
  // The site-visitors list streams only while it is on screen.
  if (name === 'visitors') visitors.watch();
  else visitors.unwatch();
  if (name === 'chats') chats.shown();
  $('#view-monitor').hidden = name !== 'monitor';
  if (monitor) {
    // The monitor streams only while it is on screen.
    if (name === 'monitor') monitor.watch();
    else monitor.unwatch();
  }
}

for (const b of document.querySelectorAll('nav.views button')) b.addEventListener('click', () => showView(b.dataset.view));

// ---- frames ----

function onFrame(f) {
  if (monitor && monitor.onFrame(f)) return;
  switch (f.type) {
    case 'welcome': {
      const chatsList = Array.isArray(f.chats) ? f.chats : [];
      const offered = new Set();
      for (const s of chatsList) {
        if (s.state === 'offered') {
          offered.add(s.chat_id);
          offers.restore(s);
        }
      }
      offers.retain(offered);
      chats.restore(chatsList);
      if (view === 'visitors') visitors.watch();
      if (monitor) monitor.reconnected();
      inbox.load();
      break;
    }
    case 'typing':
      chats.onTyping(f);
      break;
    case 'receipt':
      chats.onReceipt(f);
      break;
    case 'chat_unfollowed':
      chats.onUnfollowed(f);
      if (f.reason === 'taken_over') showBanner(S.chatTakenOver, true);
      break;
    case 'chat_assigned':
      chats.onAssigned(f);
      break;
    case 'visitors_snapshot':
      visitors.onSnapshot(f);
      break;
    case 'visitors_changed':
      visitors.onChanged(f);
      break;
    case 'visitors_stale':
      visitors.onStale();
      break;
    case 'visitor_history':
      visitors.onHistory(f);
      break;
    case 'invitation_result':
      if (visitors.onResult(f)) {
        const c = chats.open(f.chat_id, 'joining', visitors.visitors.get(f.visitor_id));
        if (!c.live && !c.resuming) chats.resume(c);
        showView('chats');
        chats.select(f.chat_id);
      }
      break;
    case 'status':
      byTestId('status-select').value = f.status;
      byTestId('status-select').setAttribute('data-status', f.status);
      if (f.reason === 'missed_offer') showBanner(S.setAwayMissed);
      break;
    case 'offer':
      offers.add(f);
      break;
    case 'waiting':
      waiting.onWaiting(f);
      break;
    case 'inbox_changed':
      inbox.onChanged(f);
      break;
    case 'offer_revoked':
      offers.revoke(f.chat_id, f.reason);
      if (f.reason === 'accepted') {
        const c = chats.open(f.chat_id);
        if (!c.live && !c.resuming) chats.resume(c);
      } else if (f.reason !== 'denied' && chats.get(f.chat_id) && chats.get(f.chat_id).state === 'joining') {
        chats.remove(f.chat_id);
      }
      break;
    case 'entry':
      chats.onEntry(f);
      break;
    case 'chat_started':
      chats.onStarted(f);
      break;
    case 'chat_ended':
      chats.onEnded(f);
      break;
    case 'chat_lost':
      // The service lost the chat (Redis lost its data): nothing to resume or decide.
      chats.remove(f.chat_id);
      showBanner(f.message || `chat ${f.chat_id} lost`, false, true);
      break;
    case 'resumed':
      chats.onResumed(f);
      break;
    case 'ack':
      chats.onAck(f);
      break;
    case 'rated':
      showRating(f);
      break;
    case 'decided':
      chats.onDecided(f);
      break;
    case 'error':
      if (offers.has(f.ref)) offers.unbusy(f.ref);
      waiting.onError(f);
      if (!chats.onError(f) && !visitors.onError(f)) showBanner(f.message || `error ${f.code}`);
      break;
    default:
      break; // frames from newer nodes are ignored
  }
}

// ---- the app ----

function accept(offer) {
  offers.busy(offer.chat_id);
  conn.send({ type: 'accept', chat_id: offer.chat_id });
  // Pipelined: the node handles frames in order, so this replays from the start once joined.
  const c = chats.open(offer.chat_id, 'joining');
  chats.resume(c);
  chats.select(offer.chat_id);
}

function startApp() {
  setToken(me.token);
  $('#login').hidden = true;
  $('#app').hidden = false;
  byTestId('agent-name').textContent = (me.agent && (me.agent.display_name || me.agent.username)) || '';
  if (conn) {
    conn.start();
    return;
  }
  conn = new SbSocket.Connection({
    url: () => `${wsBase}/ws/agent?token=${encodeURIComponent(me.token)}`,
    onFrame,
    onState: (state) => {
      const el = byTestId('conn-state');
      el.textContent = state === 'open' ? S.connected : state === 'connecting' ? S.connecting : state === 'stopped' ? '' : S.reconnecting;
      el.setAttribute('data-state', state);
      if (state !== 'open') chats.disconnected();
    },
    onUnauthorized: async () => {
      // A refused upgrade: find out whether the session is over or the node is just away.
      try {
        await api('/api/agent/me');
        return true;
      } catch (e) {
        if (e instanceof ApiError && (e.status === 401 || e.status === 403)) {
          logout(S.sessionExpired);
          return false;
        }
        return true;
      }
    }
  });
  offers = new Offers(byTestId('offers'), byTestId('no-offers'), {
    accept,
    deny: (o) => {
      offers.busy(o.chat_id);
      conn.send({ type: 'deny', chat_id: o.chat_id });
    },
    close: (o) => {
      offers.busy(o.chat_id);
      conn.send({ type: 'close', chat_id: o.chat_id });
    }
  });
  history = new History({ list: byTestId('history-list'), detail: byTestId('history-detail'), refresh: byTestId('history-refresh') });
  chats = new Chats({
    tabs: byTestId('chat-tabs'),
    panes: $('#panes'),
    empty: byTestId('no-chats'),
    navBadge: byTestId('nav-chats-unread'),
    me: me.agent && me.agent.id,
    conn,
    offers,
    onError: showBanner,
    inView: () => view === 'chats',
    openInteraction: (id) => {
      showView('history');
      history.show(id);
    }
  });
  visitors = new Visitors({ root: $('#view-visitors'), send: (frame) => conn.send(frame) });
  cannedAdmin = new CannedAdmin($('#view-canned'));
  waiting = new Waiting(byTestId('waiting-list'), byTestId('no-waiting'), {
    pick: (chatId) => {
      conn.send({ type: 'pick', chat_id: chatId });
      // As for an accept: the node handles frames in order, so this replays once joined.
      const c = chats.open(chatId, 'joining');
      chats.resume(c);
      chats.select(chatId);
    }
  });
  if (me.agent && me.agent.role === 'admin') {
    admin = new Admin($('#view-admin'), byTestId('nav-admin'));
    byTestId('nav-admin').hidden = false;
  }
  inbox = new Inbox(byTestId('inbox-list'), byTestId('no-inbox'), { me: me.agent && me.agent.id, onError: showBanner });
  // Supervisors and admins get the Monitor view (the node checks the role on every frame).
  const role = me.agent && me.agent.role;
  if (role === 'supervisor' || role === 'admin') {
    byTestId('nav-monitor').hidden = false;
    monitor = new Monitor({
      root: $('#view-monitor'),
      send: (frame) => conn.send(frame),
      onTakenOver: () => showView('chats')
    });
  }
  byTestId('status-select').addEventListener('change', (e) => {
    if (!conn.send({ type: 'set_status', status: e.target.value })) showBanner(S.reconnecting);
  });
  conn.start();
}

translatePage();
const pendingMessage = sessionStorage.getItem('sb.loginMessage');
sessionStorage.removeItem('sb.loginMessage');
if (me && me.token) startApp();
else showLogin(pendingMessage);
