// The agent's chats: one tab and one pane per chat, the transcript (shared renderer, inert
// text), the composer with its outbox, the End button and the wrap-up after the end
// (create / add to an existing interaction / trash).

import { S, fmt, h } from './strings.js';
import { api } from './api.js';

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
    c = { id, state: state || 'joining', live: false, unread: 0, info: this.offers.info(id) || {}, visitorName: '' };
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
    c.list = h('ol', { class: 'log', role: 'log', 'aria-live': 'polite', 'aria-label': S.messages, 'data-testid': 'message-list' });
    c.scroller = h('div', { class: 'log-wrap' }, [c.list]);
    c.input = h('textarea', { class: 'input', rows: '2', maxlength: '4000', placeholder: S.input, 'aria-label': S.input, 'data-testid': 'chat-input' });
    c.sendBtn = h('button', { type: 'submit', class: 'primary', 'data-testid': 'chat-send', text: S.send });
    c.compose = h('form', { class: 'compose' }, [c.input, c.sendBtn]);
    c.compose.addEventListener('submit', (e) => {
      e.preventDefault();
      this.send(c);
    });
    c.input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        this.send(c);
      }
    });
    c.wrapup = this.buildWrapup(c);
    c.pane = h('section', { class: 'pane', role: 'tabpanel', id: `pane-${id}`, 'aria-labelledby': `tab-${id}`, 'data-testid': 'chat-pane', 'data-chat-id': id, hidden: true }, [
      h('header', { class: 'pane-head' }, [h('div', {}, [c.title, c.sub]), c.stateEl, c.endBtn]),
      c.scroller,
      c.wrapup.el,
      c.compose
    ]);
    this.panes.appendChild(c.pane);
    c.transcript = new SbTranscript.Transcript(c.list, { me: 'agent', prefix: 'tx-', strings: S });
    this.fillHeader(c);
    this.setState(c, c.state);
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
    if (info.email) bits.push(info.email);
    if (info.queue) bits.push(fmt(S.queue, { queue: info.queue }));
    c.sub.textContent = bits.join(' · ');
  }

  setState(c, state) {
    c.state = state;
    c.pane.setAttribute('data-state', state);
    c.tab.setAttribute('data-state', state);
    c.stateEl.textContent = state === 'ended' ? S.ended : state === 'active' ? S.active : S.joining;
    c.compose.hidden = state === 'ended';
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
    }
  }

  remove(id) {
    const c = this.chats.get(id);
    if (!c) return;
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
    if (e.kind === 'message' && e.author === 'visitor' && (this.selected !== c.id || document.visibilityState !== 'visible')) {
      c.unread += 1;
      c.badge.textContent = String(c.unread);
      c.badge.hidden = false;
    }
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
    this.scroll(c);
    if (c.live) this.conn.send({ type: 'send', chat_id: c.id, client_msg_id: item.client_msg_id, text });
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
