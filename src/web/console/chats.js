// The agent's chats: one tab and one pane per chat, the transcript (shared renderer, inert
// text), the composer with its outbox, the End button and the wrap-up after the end
// (create / add to an existing interaction / trash). Also: links and pushed pages, files,
// typing and read receipts, transfer, and canned responses picked with "/" in the composer.

import { S, fmt, h } from './strings.js';
import { api, fileHref, getToken, openFile } from './api.js';
import { bindUploads, fileThumb, filePreview } from './upload.js';

const TYPING_EVERY_MS = 3000;
const TYPING_IDLE_MS = 4000;
const TYPING_SHOW_MS = 5000;

export class Chats {
  /**
   * tabs: the tablist; panes: where panes go; empty: the "No open chats." line.
   * conn: the SbSocket.Connection; offers: for visitor details; onError(message).
   */
  constructor({ tabs, panes, empty, conn, offers, onError }) {
    this.tabs = tabs;
    this.panes = panes;
    this.empty = empty;
    this.conn = conn;
    this.offers = offers;
    this.report = onError;
    this.chats = new Map();
    this.selected = null;
    this.outbox = new SbSocket.Outbox(SbSocket.storageOf('sessionStorage'), 'sb.agent.outbox');
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible' && this.selected) this.markRead(this.chats.get(this.selected));
    });
  }

  get(id) {
    return this.chats.get(id);
  }

  /** Opens (or returns) the tab of a chat. */
  open(id, state) {
    let c = this.chats.get(id);
    if (c) {
      if (state) this.setState(c, state);
      return c;
    }
    c = { id, state: state || 'joining', live: false, unread: 0, info: this.offers.info(id) || {}, visitorName: '', sent: {}, typingAt: 0 };
    this.build(c);
    this.chats.set(id, c);
    for (const item of this.outbox.pending(id)) c.transcript.pending(item);
    this.update();
    if (!this.selected) this.select(id);
    return c;
  }

  build(c) {
    const id = c.id;
    c.tabLabel = h('span', { class: 'tab-label' });
    c.badge = h('span', { class: 'badge', 'data-testid': 'chat-unread', hidden: true });
    c.tab = h('button', { type: 'button', role: 'tab', class: 'tab', id: `tab-${id}`, 'aria-controls': `pane-${id}`, 'aria-selected': 'false', tabindex: '-1', 'data-testid': 'chat-tab', 'data-chat-id': id }, [c.tabLabel, c.badge]);
    c.tab.addEventListener('click', () => this.select(id));
    c.tab.addEventListener('keydown', (e) => this.tabKeys(e, id));
    this.tabs.appendChild(c.tab);

    c.title = h('h2', { class: 'pane-title', 'data-testid': 'chat-title' });
    c.sub = h('p', { class: 'pane-sub', 'data-testid': 'chat-sub' });
    c.stateEl = h('span', { class: 'pane-state', 'data-testid': 'chat-state' });
    c.endBtn = h('button', { type: 'button', class: 'danger', 'data-testid': 'chat-end', text: S.end, onclick: () => this.end(c) });
    c.transferBtn = h('button', { type: 'button', 'data-testid': 'chat-transfer', 'aria-expanded': 'false', text: S.transfer, onclick: () => this.toggle(c, c.transfer, c.transferBtn) });
    c.note = h('p', { class: 'pane-note', role: 'status', 'data-testid': 'chat-note', hidden: true });
    c.typing = h('p', { class: 'typing', 'aria-live': 'polite', 'data-testid': 'chat-typing', hidden: true });
    this.buildTools(c);
    c.list = h('ol', { class: 'log', role: 'log', 'aria-live': 'polite', 'aria-label': S.messages, 'data-testid': 'message-list' });
    c.scroller = h('div', { class: 'log-wrap' }, [c.list]);
    c.input = h('textarea', { class: 'input', rows: '2', maxlength: '4000', placeholder: S.input, 'aria-label': S.input, 'data-testid': 'chat-input' });
    c.sendBtn = h('button', { type: 'submit', class: 'primary', 'data-testid': 'chat-send', text: S.send });
    c.canned = h('ul', { class: 'canned', role: 'listbox', id: `canned-${id}`, 'aria-label': S.cannedLabel, 'data-testid': 'canned-list', hidden: true });
    c.input.setAttribute('aria-controls', c.canned.id);
    c.input.setAttribute('aria-autocomplete', 'list');
    c.input.setAttribute('aria-expanded', 'false');
    c.compose = h('form', { class: 'compose' }, [h('div', { class: 'compose-input' }, [c.input, c.canned]), c.sendBtn]);
    c.input.addEventListener('input', () => {
      this.cannedQuery(c);
      this.setTyping(c, !!c.input.value.trim() && !c.input.value.startsWith('/'));
    });
    c.compose.addEventListener('submit', (e) => {
      e.preventDefault();
      this.send(c);
    });
    c.input.addEventListener('keydown', (e) => {
      if (this.cannedKeys(c, e)) return;
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        this.send(c);
      }
    });
    c.wrapup = this.buildWrapup(c);
    c.pane = h('section', { class: 'pane', role: 'tabpanel', id: `pane-${id}`, 'aria-labelledby': `tab-${id}`, 'data-testid': 'chat-pane', 'data-chat-id': id, hidden: true }, [
      h('header', { class: 'pane-head' }, [h('div', {}, [c.title, c.sub]), c.stateEl, c.transferBtn, c.endBtn]),
      c.note,
      c.scroller,
      c.wrapup.el,
      c.typing,
      c.tools,
      c.compose
    ]);
    this.panes.appendChild(c.pane);
    c.transcript = new SbTranscript.Transcript(c.list, { me: 'agent', prefix: 'tx-', strings: S, fileHref, fileOpen: (d) => openFile(d, this.report), fileThumb, filePreview });
    bindUploads(c.pane, c.input, (f) => this.upload(c, f));
    this.fillHeader(c);
    this.setState(c, c.state);
  }

  /** The row above the composer: attach, link (send / push page), and the transfer form. */
  buildTools(c) {
    c.file = h('input', { type: 'file', hidden: true, tabindex: '-1', 'data-testid': 'chat-file' });
    c.file.addEventListener('change', () => {
      const f = c.file.files && c.file.files[0];
      c.file.value = '';
      if (f) this.upload(c, f);
    });
    c.linkBtn = h('button', { type: 'button', 'data-testid': 'chat-link', 'aria-expanded': 'false', text: S.linkButton, onclick: () => this.toggle(c, c.linkForm, c.linkBtn) });
    const attach = h('button', { type: 'button', 'data-testid': 'chat-attach', text: S.attach, onclick: () => c.file.click() });

    c.linkUrl = h('input', { type: 'url', placeholder: 'https://', 'aria-label': S.linkUrl, 'data-testid': 'chat-link-url', maxlength: '2000' });
    c.linkTitle = h('input', { type: 'text', placeholder: S.linkTitle, 'aria-label': S.linkTitle, 'data-testid': 'chat-link-title', maxlength: '200' });
    c.linkForm = h('form', { class: 'tool-form', 'data-testid': 'chat-link-form', hidden: true }, [
      c.linkUrl,
      c.linkTitle,
      h('button', { type: 'submit', class: 'primary', 'data-testid': 'chat-link-send', text: S.sendLink }),
      h('button', { type: 'button', 'data-testid': 'chat-push-page', text: S.pushPage, onclick: () => this.sendUrl(c, 'push_page') })
    ]);
    c.linkForm.addEventListener('submit', (e) => {
      e.preventDefault();
      this.sendUrl(c, 'send_link');
    });

    c.toAgent = h('input', { type: 'number', min: '1', step: '1', 'aria-label': S.transferAgent, placeholder: S.transferAgent, 'data-testid': 'chat-transfer-agent' });
    c.toQueue = h('input', { type: 'text', 'aria-label': S.transferQueue, placeholder: S.transferQueue, 'data-testid': 'chat-transfer-queue', maxlength: '64' });
    c.transferStatus = h('span', { class: 'tool-status', role: 'status', 'data-testid': 'chat-transfer-status' });
    c.transfer = h('form', { class: 'tool-form', 'data-testid': 'chat-transfer-form', hidden: true }, [
      c.toAgent,
      c.toQueue,
      h('button', { type: 'submit', class: 'primary', 'data-testid': 'chat-transfer-submit', text: S.transferSubmit }),
      h('button', { type: 'button', text: S.transferCancel, onclick: () => this.toggle(c, c.transfer, c.transferBtn, false) }),
      c.transferStatus
    ]);
    c.transfer.addEventListener('submit', (e) => {
      e.preventDefault();
      this.transfer(c);
    });
    c.tools = h('div', { class: 'tools' }, [h('div', { class: 'tool-buttons' }, [attach, c.file, c.linkBtn]), c.linkForm, c.transfer]);
  }

  toggle(c, form, button, show = form.hidden) {
    form.hidden = !show;
    button.setAttribute('aria-expanded', show ? 'true' : 'false');
    if (show) {
      const first = form.querySelector('input');
      if (first) first.focus();
    }
  }

  note(c, text) {
    c.note.textContent = text || '';
    c.note.hidden = !text;
  }

  buildWrapup(c) {
    const w = {};
    w.reason = h('p', { class: 'wrapup-reason', 'data-testid': 'wrapup-reason' });
    w.status = h('p', { class: 'wrapup-status', 'data-testid': 'wrapup-status', role: 'status' });
    w.list = h('ul', { class: 'wrapup-list', 'data-testid': 'wrapup-interactions' });
    w.confirm = h('button', { type: 'button', class: 'primary', 'data-testid': 'wrapup-add-confirm', text: S.addConfirm, onclick: () => this.confirmAdd(c) });
    w.addPanel = h('div', { class: 'wrapup-add', hidden: true }, [w.list, w.confirm]);
    w.buttons = h('div', { class: 'wrapup-buttons' }, [
      h('button', { type: 'button', class: 'primary', 'data-testid': 'wrapup-create', text: S.create, onclick: () => this.decide(c, 'create') }),
      h('button', { type: 'button', 'data-testid': 'wrapup-add', text: S.add, onclick: () => this.showAdd(c) }),
      h('button', { type: 'button', class: 'danger', 'data-testid': 'wrapup-trash', text: S.trash, onclick: () => this.decide(c, 'trash') })
    ]);
    w.el = h('section', { class: 'wrapup', role: 'region', 'aria-label': S.wrapupTitle, 'data-testid': 'wrapup', hidden: true }, [
      h('h3', { text: S.wrapupTitle }),
      w.reason,
      w.buttons,
      w.addPanel,
      w.status
    ]);
    return w;
  }

  fillHeader(c) {
    const info = c.info || {};
    const name = info.name || c.visitorName || fmt(S.chatLabel, { id: c.id.slice(0, 8) });
    c.tabLabel.textContent = name;
    c.title.textContent = name;
    const bits = [];
    if (info.email) bits.push(info.email_verified ? info.email : fmt(S.emailUnverified, { email: info.email }));
    if (info.queue) bits.push(fmt(S.queue, { queue: info.queue }));
    c.sub.textContent = bits.join(' · ');
  }

  setState(c, state) {
    c.state = state;
    c.pane.setAttribute('data-state', state);
    c.tab.setAttribute('data-state', state);
    c.stateEl.textContent = state === 'ended' ? S.ended : state === 'active' ? S.active : S.joining;
    c.compose.hidden = state === 'ended';
    c.tools.hidden = state === 'ended';
    c.transferBtn.hidden = state !== 'active';
    c.endBtn.hidden = state === 'ended';
    c.wrapup.el.hidden = state !== 'ended';
  }

  select(id) {
    const c = this.chats.get(id);
    if (!c) return;
    this.selected = id;
    for (const other of this.chats.values()) {
      const on = other === c;
      other.tab.setAttribute('aria-selected', on ? 'true' : 'false');
      other.tab.tabIndex = on ? 0 : -1;
      other.pane.hidden = !on;
    }
    this.markRead(c);
    this.scroll(c);
    this.receipts(c);
  }

  tabKeys(e, id) {
    const ids = [...this.chats.keys()];
    const i = ids.indexOf(id);
    let next = null;
    if (e.key === 'ArrowDown' || e.key === 'ArrowRight') next = ids[(i + 1) % ids.length];
    if (e.key === 'ArrowUp' || e.key === 'ArrowLeft') next = ids[(i - 1 + ids.length) % ids.length];
    if (next) {
      e.preventDefault();
      this.select(next);
      this.chats.get(next).tab.focus();
    }
  }

  markRead(c) {
    if (!c) return;
    c.unread = 0;
    c.badge.hidden = true;
    c.badge.textContent = '';
    this.receipts(c);
  }

  /** Is the agent looking at this chat? */
  visible(c) {
    return this.selected === c.id && document.visibilityState === 'visible' && !this.panes.closest('[hidden]');
  }

  /** Receipts for the visitor's messages: "read" while the chat is on screen, else "delivered". */
  receipts(c) {
    if (!c || !c.live || c.state === 'ended') return;
    const seq = c.transcript.lastTheirs();
    const state = this.visible(c) ? 'read' : 'delivered';
    if (!seq || SbSocket.compareSeq(seq, c.sent[state] || '') <= 0) return;
    if (this.conn.send({ type: 'receipt', chat_id: c.id, seq, state })) c.sent[state] = seq;
  }

  /** The view with the chats came back into sight. */
  shown() {
    if (this.selected) this.markRead(this.chats.get(this.selected));
  }

  scroll(c) {
    c.scroller.scrollTop = c.scroller.scrollHeight;
  }

  update() {
    this.empty.hidden = this.chats.size > 0;
    const placeholder = this.panes.querySelector('.placeholder');
    if (placeholder) placeholder.hidden = this.chats.size > 0;
  }

  /** Replays what this tab has not seen, then the node sends live entries. */
  resume(c) {
    c.live = false;
    c.resuming = true;
    this.conn.send({ type: 'resume', chat_id: c.id, last_seq: c.transcript.lastSeq() });
  }

  /** After a reconnect: `welcome` lists the agent's chats. */
  restore(summaries) {
    const listed = new Set();
    for (const s of summaries) {
      if (s.state !== 'active' && s.state !== 'ended') continue;
      listed.add(s.chat_id);
      const c = this.open(s.chat_id, s.state);
      this.resume(c);
    }
    // Tabs the node no longer knows were decided (by another tab) or lost.
    for (const [id, c] of this.chats) if (!listed.has(id) && c.state !== 'joining') this.remove(id);
  }

  disconnected() {
    for (const c of this.chats.values()) {
      c.live = false;
      c.resuming = false;
      c.typingAt = 0;
    }
  }

  remove(id) {
    const c = this.chats.get(id);
    if (!c) return;
    clearTimeout(c.typingTimer);
    clearTimeout(c.theirTypingTimer);
    clearTimeout(c.transferTimer);
    c.tab.remove();
    c.pane.remove();
    this.chats.delete(id);
    this.outbox.dropChat(id);
    if (this.selected === id) {
      this.selected = null;
      const first = this.chats.keys().next();
      if (!first.done) this.select(first.value);
    }
    this.update();
  }

  // ---- frames ----

  /** No connection of this agent follows the chat any more (it was transferred, maybe from
   * another tab): its tab closes. */
  onUnfollowed(f) {
    const c = this.chats.get(f.chat_id);
    if (!c) return;
    const mine = c.transferring;
    this.remove(f.chat_id);
    if (mine) this.report(S.transferred, true);
  }

  onEntry(f) {
    const c = this.chats.get(f.chat_id);
    if (!c || !f.entry) return;
    const e = f.entry;
    if (e.author === 'agent' && e.client_msg_id) this.outbox.remove(e.client_msg_id);
    if (!c.transcript.add(e)) return;
    if (e.author === 'visitor' && e.name && !c.visitorName) {
      c.visitorName = e.name;
      this.fillHeader(c);
    }
    const atBottom = c.scroller.scrollHeight - c.scroller.scrollTop - c.scroller.clientHeight < 80;
    if (atBottom || e.author === 'agent') this.scroll(c);
    if (e.kind === 'message' && e.author === 'visitor') {
      this.showTyping(c, false);
      if (!this.visible(c)) {
        c.unread += 1;
        c.badge.textContent = String(c.unread);
        c.badge.hidden = false;
      }
      this.receipts(c);
    }
  }

  onTyping(f) {
    const c = this.chats.get(f.chat_id);
    if (c && f.by === 'visitor') this.showTyping(c, !!f.typing);
  }

  showTyping(c, on) {
    clearTimeout(c.theirTypingTimer);
    c.typing.textContent = on ? S.typing : '';
    c.typing.hidden = !on;
    if (on) c.theirTypingTimer = setTimeout(() => this.showTyping(c, false), TYPING_SHOW_MS);
  }

  onReceipt(f) {
    const c = this.chats.get(f.chat_id);
    if (c && f.by === 'visitor') c.transcript.receipt(f.seq, f.state);
  }

  /** `chat_assigned`: another agent handed this chat over; resume it from the start. */
  onAssigned(f) {
    const c = this.open(f.chat_id, 'joining');
    this.note(c, fmt(S.assigned, { name: f.from_agent_name || '' }));
    if (!c.live && !c.resuming) this.resume(c);
    if (!this.selected || this.selected === c.id) this.select(c.id);
    return c;
  }

  onStarted(f) {
    const c = this.chats.get(f.chat_id);
    if (c && c.state !== 'ended') this.setState(c, 'active');
  }

  onEnded(f) {
    const c = this.chats.get(f.chat_id);
    if (!c) return;
    for (const item of this.outbox.pending(c.id)) c.transcript.failed(item.client_msg_id, '');
    this.outbox.dropChat(c.id);
    this.setState(c, 'ended');
    c.wrapup.reason.textContent = f.reason ? fmt(S.wrapupReason, { reason: f.reason }) : '';
  }

  onResumed(f) {
    const c = this.chats.get(f.chat_id);
    if (!c) return;
    c.live = true;
    c.resuming = false;
    if (c.state === 'joining') this.setState(c, 'active');
    if (c.state === 'active') this.outbox.flush(this.conn, c.id);
    this.receipts(c);
  }

  onAck(f) {
    this.outbox.remove(f.client_msg_id);
    const c = this.chats.get(f.chat_id);
    if (c) c.transcript.acked(f.client_msg_id, f.seq);
  }

  onDecided(f) {
    this.remove(f.chat_id);
  }

  /** An `error` frame; true when it was about one of these chats or sends. */
  onError(f) {
    const ref = f.ref;
    if (!ref) return false;
    const item = this.outbox.find(ref);
    if (item) {
      const code = f.code | 0;
      if (code === 4100 || code >= 4500) {
        setTimeout(() => {
          const c = this.chats.get(item.chat_id);
          if (c && c.live && this.outbox.find(ref)) this.outbox.flush(this.conn, c.id);
        }, 2000);
      } else {
        this.outbox.remove(ref);
        const c = this.chats.get(item.chat_id);
        if (c) c.transcript.failed(ref, f.message);
      }
      return true;
    }
    const c = this.chats.get(ref);
    if (!c) return false;
    const code = f.code | 0;
    if (c.transferring) {
      clearTimeout(c.transferTimer);
      c.transferring = false;
      c.transferStatus.textContent = f.message || `error ${code}`;
      return true;
    }
    if (code < 4100) {
      // push_page is refused with the chat as ref: fail its pending item, if any.
      const pushed = this.outbox.pending(c.id).filter((i) => i.kind === 'push_page');
      for (const i of pushed) {
        this.outbox.remove(i.client_msg_id);
        c.transcript.failed(i.client_msg_id, f.message);
      }
      if (pushed.length) return true;
    }
    if (c.state === 'joining' && (code === 4004 || code === 4005 || code === 4006)) {
      // The accept lost a race (the offer timed out or the visitor left).
      this.remove(ref);
      this.report(fmt(S.gone, { message: f.message }));
      return true;
    }
    if (code === 4004 || code === 4005) {
      this.remove(ref);
      this.report(fmt(S.gone, { message: f.message }));
      return true;
    }
    if (code === 4007) {
      c.transcript.clear();
      this.conn.send({ type: 'resume', chat_id: ref, last_seq: '' });
      return true;
    }
    if (c.state === 'ended') {
      c.wrapup.status.textContent = f.message || '';
      for (const b of c.wrapup.el.querySelectorAll('button')) b.disabled = false;
      return true;
    }
    return false;
  }

  // ---- actions ----

  send(c) {
    const text = c.input.value.trim();
    if (!text || c.state === 'ended') return;
    const item = this.outbox.add(c.id, text);
    c.transcript.pending(item);
    c.input.value = '';
    this.closeCanned(c);
    this.setTyping(c, false);
    this.scroll(c);
    if (c.live) this.conn.send({ type: 'send', chat_id: c.id, client_msg_id: item.client_msg_id, text });
  }

  /** A link entry (`send_link`) or a page opened in the visitor's browser (`push_page`). */
  sendUrl(c, kind) {
    const url = SbTranscript.safeHref(c.linkUrl.value.trim());
    if (!url) {
      this.note(c, S.badUrl);
      c.linkUrl.focus();
      return;
    }
    if (c.state === 'ended') return;
    this.note(c, '');
    const extra = { kind, url };
    const title = c.linkTitle.value.trim();
    if (kind === 'send_link' && title) extra.title = title;
    const item = this.outbox.add(c.id, url, extra);
    c.transcript.pending(item);
    c.linkUrl.value = '';
    c.linkTitle.value = '';
    this.toggle(c, c.linkForm, c.linkBtn, false);
    this.scroll(c);
    if (c.live) this.conn.send(SbSocket.frameOf(item));
  }

  /** Typing: true at most every 3 s while there is text, false after 4 s idle or on send. */
  setTyping(c, on) {
    if (!c.live || c.state !== 'active') return;
    clearTimeout(c.typingTimer);
    if (on) {
      if (Date.now() - c.typingAt > TYPING_EVERY_MS) {
        c.typingAt = Date.now();
        this.conn.send({ type: 'typing', chat_id: c.id, typing: true });
      }
      c.typingTimer = setTimeout(() => this.setTyping(c, false), TYPING_IDLE_MS);
    } else if (c.typingAt) {
      c.typingAt = 0;
      this.conn.send({ type: 'typing', chat_id: c.id, typing: false });
    }
  }

  async upload(c, f) {
    this.note(c, fmt(S.uploading, { name: f.name }));
    try {
      const res = await fetch(`/api/chats/${encodeURIComponent(c.id)}/files?name=${encodeURIComponent(f.name)}`, {
        method: 'POST',
        headers: { 'Content-Type': f.type || 'application/octet-stream', Authorization: `Bearer ${getToken()}` },
        body: f,
        credentials: 'omit'
      });
      if (!res.ok) {
        let message = `HTTP ${res.status}`;
        try {
          message = (await res.json()).message || message;
        } catch (e) {
          /* not JSON */
        }
        throw new Error(message);
      }
      this.note(c, '');
    } catch (e) {
      this.note(c, fmt(S.uploadFailed, { message: e.message }));
    }
  }

  transfer(c) {
    const agent = c.toAgent.value.trim();
    const queue = c.toQueue.value.trim();
    if (!!agent === !!queue || (agent && !/^\d+$/.test(agent))) {
      c.transferStatus.textContent = S.transferNeedOne;
      return;
    }
    const frame = { type: 'transfer', chat_id: c.id };
    if (agent) frame.to_agent = Number(agent);
    else frame.to_queue = queue;
    if (!this.conn.send(frame)) {
      c.transferStatus.textContent = S.reconnecting;
      return;
    }
    // Success has no answer of its own: without an error soon, the chat is gone from here.
    c.transferring = true;
    c.transferStatus.textContent = S.transferring;
    c.transferTimer = setTimeout(() => {
      if (!c.transferring) return;
      this.remove(c.id);
      this.report(S.transferred, true);
    }, 1500);
  }

  // ---- canned responses: "/" at the start of the composer ----

  cannedQuery(c) {
    const v = c.input.value;
    if (!/^\/\S*$/.test(v)) {
      this.closeCanned(c);
      return;
    }
    clearTimeout(c.cannedTimer);
    c.cannedTimer = setTimeout(async () => {
      const seq = (c.cannedSeq = (c.cannedSeq || 0) + 1);
      let items;
      try {
        items = await api(`/api/canned?q=${encodeURIComponent(v)}`);
      } catch (e) {
        this.note(c, fmt(S.cannedFailed, { message: e.message }));
        return;
      }
      if (seq !== c.cannedSeq || c.input.value !== v) return;
      this.showCanned(c, Array.isArray(items) ? items : []);
    }, 120);
  }

  showCanned(c, items) {
    c.cannedItems = items;
    c.cannedIndex = items.length ? 0 : -1;
    c.canned.textContent = '';
    if (!items.length) c.canned.appendChild(h('li', { class: 'empty', text: S.cannedNone }));
    items.forEach((it, i) => {
      const li = h('li', { role: 'option', id: `canned-${c.id}-${i}`, 'data-testid': 'canned-option', 'data-id': String(it.id), 'aria-selected': 'false' }, [
        h('strong', { text: it.shortcut ? `/${String(it.shortcut).replace(/^\//, '')}` : '' }),
        h('span', { text: ` ${it.title || ''}` }),
        h('small', { text: it.text || '' })
      ]);
      li.addEventListener('mousedown', (e) => e.preventDefault());
      li.addEventListener('click', () => this.pickCanned(c, i));
      c.canned.appendChild(li);
    });
    c.canned.hidden = false;
    c.input.setAttribute('aria-expanded', 'true');
    this.highlight(c);
  }

  highlight(c) {
    const opts = c.canned.querySelectorAll('[role="option"]');
    opts.forEach((o, i) => o.setAttribute('aria-selected', i === c.cannedIndex ? 'true' : 'false'));
    if (c.cannedIndex >= 0 && opts[c.cannedIndex]) {
      c.input.setAttribute('aria-activedescendant', opts[c.cannedIndex].id);
      opts[c.cannedIndex].scrollIntoView({ block: 'nearest' });
    } else c.input.removeAttribute('aria-activedescendant');
  }

  closeCanned(c) {
    clearTimeout(c.cannedTimer);
    c.cannedSeq = (c.cannedSeq || 0) + 1;
    c.canned.hidden = true;
    c.canned.textContent = '';
    c.cannedItems = [];
    c.input.setAttribute('aria-expanded', 'false');
    c.input.removeAttribute('aria-activedescendant');
  }

  /** Keys while the picker is open; true when handled. */
  cannedKeys(c, e) {
    if (c.canned.hidden) return false;
    const n = (c.cannedItems || []).length;
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      if (n) c.cannedIndex = (c.cannedIndex + (e.key === 'ArrowDown' ? 1 : n - 1)) % n;
      this.highlight(c);
      return true;
    }
    if ((e.key === 'Enter' || e.key === 'Tab') && n && c.cannedIndex >= 0) {
      e.preventDefault();
      this.pickCanned(c, c.cannedIndex);
      return true;
    }
    if (e.key === 'Escape') {
      e.preventDefault();
      this.closeCanned(c);
      return true;
    }
    return false;
  }

  /** Renders the canned response for this chat (placeholders filled) into the composer. */
  async pickCanned(c, i) {
    const it = c.cannedItems[i];
    this.closeCanned(c);
    if (!it) return;
    try {
      const res = await api(`/api/canned/${encodeURIComponent(it.id)}/render`, { method: 'POST', body: { chat_id: c.id } });
      c.input.value = (res && res.text) || '';
      this.note(c, '');
    } catch (e) {
      // The shortcut typed is no message: clear it, keep the node's reason on screen.
      if (c.input.value.startsWith('/')) c.input.value = '';
      this.note(c, fmt(S.cannedFailed, { message: e.message }));
    }
    c.input.focus();
  }

  end(c) {
    this.conn.send({ type: 'end', chat_id: c.id });
  }

  decide(c, decision, interactionId) {
    const frame = { type: 'decide', chat_id: c.id, decision };
    if (interactionId != null) frame.interaction_id = interactionId;
    if (!this.conn.send(frame)) {
      c.wrapup.status.textContent = S.reconnecting;
      return;
    }
    for (const b of c.wrapup.el.querySelectorAll('button')) b.disabled = true;
    c.wrapup.status.textContent = S.deciding;
  }

  async showAdd(c) {
    const w = c.wrapup;
    w.addPanel.hidden = false;
    w.list.textContent = '';
    w.status.textContent = S.loadingInteractions;
    try {
      const list = await api(`/api/chats/${encodeURIComponent(c.id)}/interactions`);
      w.status.textContent = '';
      if (!Array.isArray(list) || list.length === 0) {
        w.list.appendChild(h('li', { class: 'empty', text: S.noInteractions }));
        w.confirm.hidden = true;
        return;
      }
      w.confirm.hidden = false;
      list.forEach((it, i) => {
        const rid = `wi-${c.id}-${it.id}`;
        const radio = h('input', { type: 'radio', name: `wi-${c.id}`, id: rid, value: String(it.id), 'data-testid': 'wrapup-interaction', checked: i === 0 });
        const label = h('label', { for: rid }, [document.createTextNode(fmt(S.interaction, { id: it.id, subject: it.subject || '' }))]);
        if (it.created_at) label.appendChild(h('small', { text: ` · ${new Date(it.created_at).toLocaleString()}` }));
        w.list.appendChild(h('li', {}, [radio, label]));
      });
    } catch (e) {
      w.status.textContent = fmt(S.loadFailed, { message: e.message });
    }
  }

  confirmAdd(c) {
    const picked = c.wrapup.list.querySelector('input[type=radio]:checked');
    if (!picked) {
      c.wrapup.status.textContent = S.pickInteraction;
      return;
    }
    this.decide(c, 'add', Number(picked.value));
  }
}
