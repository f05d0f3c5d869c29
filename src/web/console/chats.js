// The agent's chats: one ChatView (chat_view.js) per chat, which one is on screen, the frames
// of the node routed to them, read receipts, the outbox of unacknowledged sends, transfers,
// and new-message alerts (unread badges on the tab and on "Chats", the title count, a sound,
// a desktop notification while the console is hidden; notify.js).

import { S, fmt } from './strings.js';
import { ChatView } from './chat_view.js';
import { alertAgent, setTitleCount } from './notify.js';

const TICK_MS = 5000;

export class Chats {
  /**
   * tabs: the tablist; panes: where panes go; empty: the "No open chats." line; navBadge: the
   * unread count on "Chats"; me: this agent's id; conn: the SbSocket.Connection; offers: for
   * visitor details; onError(message, info); inView(): whether the chats view is on screen;
   * openInteraction(id): shows a past interaction.
   */
  constructor({ tabs, panes, empty, navBadge, me, conn, offers, onError, inView, openInteraction }) {
    Object.assign(this, { tabs, panes, empty, navBadge, me, conn, offers, report: onError, inView, openInteraction });
    this.chats = new Map();
    this.selected = null;
    this.outbox = new SbSocket.Outbox(SbSocket.storageOf('sessionStorage'), 'sb.agent.outbox');
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') this.shown();
    });
    this.ticker = setInterval(() => {
      for (const c of this.chats.values()) c.tick();
    }, TICK_MS);
  }

  get(id) {
    return this.chats.get(id);
  }

  /** Opens (or returns) the tab of a chat; `info`: what is known of the visitor already. */
  open(id, state, info) {
    let c = this.chats.get(id);
    if (c) {
      if (state) c.setState(state);
      return c;
    }
    c = new ChatView({
      id,
      state,
      info: this.offers.info(id) || info || {},
      me: this.me,
      conn: this.conn,
      outbox: this.outbox,
      ui: {
        report: this.report,
        select: (cid) => this.select(cid),
        tabKeys: (e, cid) => this.tabKeys(e, cid),
        transfer: (view, frame) => this.transfer(view, frame),
        end: (view) => this.conn.send({ type: 'end', chat_id: view.id }),
        openInteraction: (iid) => this.openInteraction(iid)
      }
    });
    this.tabs.appendChild(c.tab);
    this.panes.appendChild(c.pane);
    this.chats.set(id, c);
    for (const item of this.outbox.pending(id)) c.transcript.pending(item);
    this.update();
    if (!this.selected) this.select(id);
    else c.panel.load();
    return c;
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
      if (!on) other.panel.unwatch();
    }
    c.panel.watch();
    this.markRead(c);
    c.scroll();
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

  /** Is the agent looking at this chat? */
  visible(c) {
    return this.selected === c.id && document.visibilityState === 'visible' && this.inView();
  }

  markRead(c) {
    if (!c || !this.visible(c)) return;
    c.setUnread(0);
    this.counted();
    this.receipts(c);
  }

  /** The unread total on "Chats" and in the title. */
  counted() {
    let n = 0;
    for (const c of this.chats.values()) n += c.unread;
    this.navBadge.textContent = n ? String(n) : '';
    this.navBadge.hidden = !n;
    setTitleCount('messages', n);
  }

  /** Receipts for the visitor's messages: "read" while the chat is on screen, else "delivered". */
  receipts(c) {
    if (!c || !c.live || c.state === 'ended') return;
    const seq = c.transcript.lastTheirs();
    const state = this.visible(c) ? 'read' : 'delivered';
    if (!seq || SbSocket.compareSeq(seq, c.sent[state] || '') <= 0) return;
    if (this.conn.send({ type: 'receipt', chat_id: c.id, seq, state })) c.sent[state] = seq;
  }

  /** The chats came back into sight (the view, or the browser tab). */
  shown() {
    if (this.selected) this.markRead(this.chats.get(this.selected));
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
    c.destroy();
    this.chats.delete(id);
    this.outbox.dropChat(id);
    if (this.selected === id) {
      this.selected = null;
      const first = this.chats.keys().next();
      if (!first.done) this.select(first.value);
    }
    this.counted();
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
    const atBottom = c.atBottom();
    if (!c.add(e)) return;
    if (atBottom || (e.author === 'agent' && c.transcript.mine(e))) c.scroll();
    if (e.kind === 'message' && e.author === 'visitor') {
      c.showTyping(false);
      if (!this.visible(c)) {
        c.setUnread(c.unread + 1);
        this.counted();
        // A replay after a reconnect counts, but only what arrives live calls the agent.
        if (c.live) alertAgent({ title: fmt(S.messageFrom, { name: c.displayName() }), body: e.text, tag: `sb-chat-${c.id}`, onClick: () => this.select(c.id) });
      }
      this.receipts(c);
    }
  }

  onTyping(f) {
    const c = this.chats.get(f.chat_id);
    if (c && f.by === 'visitor') c.showTyping(!!f.typing);
  }

  onReceipt(f) {
    const c = this.chats.get(f.chat_id);
    if (c && f.by === 'visitor') c.transcript.receipt(f.seq, f.state);
  }

  /** `chat_assigned`: another agent handed this chat over; resume it from the start. */
  onAssigned(f) {
    const c = this.open(f.chat_id, 'joining');
    c.handedOver(f.from_agent_name, f.note);
    if (!c.live && !c.resuming) this.resume(c);
    if (!this.selected || this.selected === c.id) this.select(c.id);
    return c;
  }

  onStarted(f) {
    const c = this.chats.get(f.chat_id);
    if (c && c.state !== 'ended') c.setState('active');
  }

  onEnded(f) {
    const c = this.chats.get(f.chat_id);
    if (!c) return;
    for (const item of this.outbox.pending(c.id)) c.transcript.failed(item.client_msg_id, '');
    this.outbox.dropChat(c.id);
    c.setState('ended');
    c.wrapup.ended(f.reason);
  }

  onResumed(f) {
    const c = this.chats.get(f.chat_id);
    if (!c) return;
    c.live = true;
    c.resuming = false;
    if (c.state === 'joining') c.setState('active');
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
    const code = f.code | 0;
    const item = this.outbox.find(ref);
    if (item) {
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
    if (c.transferring) {
      clearTimeout(c.transferTimer);
      c.transferring = false;
      c.picker.say(f.message || `error ${code}`);
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
    if (code === 4004 || code === 4005 || (c.state === 'joining' && code === 4006)) {
      // Gone, not ours, or an accept that lost a race (the offer timed out, the visitor left).
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
      c.wrapup.refused(f.message);
      return true;
    }
    return false;
  }

  // ---- actions ----

  transfer(c, target) {
    if (!this.conn.send({ type: 'transfer', chat_id: c.id, ...target })) {
      c.picker.say(S.reconnecting);
      return;
    }
    // Success has no answer of its own: without an error soon, the chat is gone from here.
    c.transferring = true;
    c.picker.say(S.transferring);
    c.transferTimer = setTimeout(() => {
      if (!c.transferring) return;
      this.remove(c.id);
      this.report(S.transferred, true);
    }, 1500);
  }
}
