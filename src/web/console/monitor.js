// The supervisors' Monitor view (role supervisor or admin): the live tables of every waiting
// and running chat, the agents and the queues (`monitor_snapshot`, then `monitor_changed`
// batches, only while the view is on screen), and one chat opened read-only with a whisper box
// and a Take over button. Visitor-supplied text is set as textContent only.

import { S, fmt, h } from './strings.js';

const STATE_ORDER = { queued: 0, offered: 1, active: 2, ended: 3 };

function duration(ms) {
  if (typeof ms !== 'number' || !isFinite(ms)) return '';
  const s = Math.max(0, Math.floor(ms / 1000));
  const m = Math.floor(s / 60);
  return fmt(S.duration, { m, s: String(s % 60).padStart(2, '0') });
}

export class Monitor {
  /** root: the view's section; send(frame) -> bool; onTakenOver(chatId). */
  constructor({ root, send, onTakenOver }) {
    this.root = root;
    this.send = send;
    this.onTakenOver = onTakenOver;
    this.watching = false;
    this.chats = new Map();
    /** chat id -> its table row {tr, cells, open} */
    this.rows = new Map();
    this.agents = new Map();
    this.queues = new Map();
    this.total = 0;
    this.skew = 0; // node clock minus ours, from the frames' `at`
    /** The chat open read-only: {id, transcript} */
    this.open = null;
    this.whisperN = 0;
    this.q = (id) => root.querySelector(`[data-testid="${id}"]`);
    this.q('monitor-whisper-form').addEventListener('submit', (e) => {
      e.preventDefault();
      this.whisper();
    });
    this.q('monitor-take-over').addEventListener('click', () => this.takeOver());
    this.q('monitor-close').addEventListener('click', () => this.closeChat());
    setInterval(() => this.watching && this.renderChats(), 1000);
  }

  watch() {
    if (this.watching) return;
    this.watching = true;
    this.send({ type: 'watch_monitor' });
  }

  unwatch() {
    if (!this.watching) return;
    this.watching = false;
    this.send({ type: 'unwatch_monitor' });
  }

  /** A new connection: watch and follow again what was on screen. */
  reconnected() {
    if (this.watching) this.send({ type: 'watch_monitor' });
    if (this.open) this.send({ type: 'resume', chat_id: this.open.id, last_seq: this.open.transcript.lastSeq() });
  }

  /** Takes the frames that are the monitor's; returns true when handled here only. */
  onFrame(f) {
    switch (f.type) {
      case 'monitor_snapshot':
        this.chats.clear();
        this.agents.clear();
        this.queues.clear();
        this.apply(f);
        return true;
      case 'monitor_changed':
        for (const id of f.removed || []) this.chats.delete(id);
        this.apply(f);
        return true;
      case 'entry':
      case 'resumed':
        if (!this.isOpen(f.chat_id)) return false;
        if (f.type === 'entry') this.addEntry(f.entry);
        return true;
      case 'ack':
        return this.isOpen(f.chat_id) && String(f.client_msg_id || '').startsWith('whisper-');
      case 'chat_ended':
        if (this.isOpen(f.chat_id)) this.q('monitor-take-over').disabled = true;
        return this.isOpen(f.chat_id);
      case 'error':
        if (!this.isOpen(f.ref) && !String(f.ref || '').startsWith('whisper-')) return false;
        this.status(f.message || `error ${f.code}`, true);
        return true;
      default:
        return false;
    }
  }

  isOpen(chatId) {
    return !!this.open && this.open.id === chatId;
  }

  apply(f) {
    if (typeof f.at === 'number') this.skew = f.at - Date.now();
    for (const c of f.chats || []) this.chats.set(c.chat_id, c);
    for (const a of f.agents || []) this.agents.set(a.agent_id, a);
    for (const q of f.queues || []) this.queues.set(q.queue, q);
    if (typeof f.total_chats === 'number') this.total = f.total_chats;
    this.renderChats();
    this.renderAgents();
    this.renderQueues();
  }

  now() {
    return Date.now() + this.skew;
  }

  agentName(id) {
    const a = id != null ? this.agents.get(id) : null;
    return a ? a.name : id != null ? String(id) : '';
  }

  /** The chats table: one row per chat, kept (and its cells updated) while the chat stays, so
   * a row under the pointer is never replaced; the clock only rewrites the time cells. */
  renderChats() {
    const rows = [...this.chats.values()].sort(
      (a, b) => (STATE_ORDER[a.state] ?? 9) - (STATE_ORDER[b.state] ?? 9) || a.requested_at - b.requested_at
    );
    const now = this.now();
    const body = this.q('monitor-chat-rows');
    const keep = new Set(rows.map((c) => c.chat_id));
    for (const [id, r] of this.rows) {
      if (!keep.has(id)) {
        r.tr.remove();
        this.rows.delete(id);
      }
    }
    let prev = null;
    for (const c of rows) {
      let r = this.rows.get(c.chat_id);
      if (!r) {
        r = this.newRow(c.chat_id);
        this.rows.set(c.chat_id, r);
      }
      this.fillRow(r, c, now);
      const next = prev ? prev.nextSibling : body.firstChild;
      if (next !== r.tr) body.insertBefore(r.tr, next);
      prev = r.tr;
    }
    this.q('monitor-no-chats').hidden = rows.length > 0;
    this.q('monitor-count').textContent = fmt(S.monitorTotal, { shown: rows.length, total: this.total });
  }

  newRow(chatId) {
    const cells = {};
    for (const k of ['queue', 'visitor', 'agent', 'state', 'waited', 'silent', 'rating', 'actions']) cells[k] = h('td', {});
    cells.agent.setAttribute('data-testid', 'monitor-chat-agent');
    const open = h('button', { type: 'button', 'data-testid': 'monitor-open', text: S.monitorOpen, onclick: () => this.openChat(this.chats.get(chatId)) });
    cells.actions.appendChild(open);
    const tr = h('tr', { 'data-testid': 'monitor-chat', 'data-chat': chatId }, Object.values(cells));
    return { tr, cells, open };
  }

  fillRow(r, c, now) {
    const set = (cell, text) => {
      if (cell.textContent !== text) cell.textContent = text;
    };
    r.tr.setAttribute('data-state', c.state);
    set(r.cells.queue, c.queue);
    set(r.cells.visitor, c.name || c.visitor_id.slice(0, 8));
    set(r.cells.agent, this.agentName(c.agent_id));
    set(r.cells.state, S[c.state] || c.state);
    set(r.cells.waited, duration(now - (c.accepted_at || c.requested_at)));
    set(r.cells.silent, c.last_visitor_at ? duration(now - c.last_visitor_at) : '');
    set(r.cells.rating, c.rating == null ? '' : String(c.rating));
    // Only a running chat can be opened read-only.
    r.open.hidden = !(c.state === 'active' || c.state === 'ended');
  }

  renderAgents() {
    const rows = [...this.agents.values()].sort((a, b) => a.name.localeCompare(b.name));
    this.q('monitor-agent-rows').replaceChildren(
      ...rows.map((a) =>
        h('tr', { 'data-testid': 'monitor-agent', 'data-agent': String(a.agent_id), 'data-status': a.status }, [
          h('td', { text: a.name }),
          h('td', { text: a.role }),
          h('td', { text: (S[a.status] || a.status) + (a.unroutable ? ' *' : '') }),
          h('td', { text: `${a.load} / ${a.max_chats}`, 'data-testid': 'monitor-agent-load' })
        ])
      )
    );
  }

  renderQueues() {
    const now = this.now();
    const rows = [...this.queues.values()].sort((a, b) => a.queue.localeCompare(b.queue));
    this.q('monitor-queue-rows').replaceChildren(
      ...rows.map((q) =>
        h('tr', { 'data-testid': 'monitor-queue', 'data-queue': q.queue }, [
          h('td', { text: q.queue }),
          h('td', { text: String(q.waiting), 'data-testid': 'monitor-queue-waiting' }),
          h('td', { text: q.oldest_request_at ? duration(now - q.oldest_request_at) : '' }),
          h('td', { text: String(q.accepted_last_hour), 'data-testid': 'monitor-queue-accepted' }),
          h('td', { text: q.median_accept_ms != null ? duration(q.median_accept_ms) : '' }),
          h('td', { text: String(q.missed_offers_last_hour) })
        ])
      )
    );
  }

  /** Follows one running chat read-only (a supervisor's `resume`). */
  openChat(c) {
    this.closeChat();
    const list = this.q('monitor-transcript');
    list.replaceChildren();
    this.open = { id: c.chat_id, transcript: new SbTranscript.Transcript(list, { me: 'supervisor', prefix: 'tx-', strings: S, showOwnName: true }) };
    this.q('monitor-chat-title').textContent = `${c.name || c.visitor_id.slice(0, 8)} · ${c.queue} · ${this.agentName(c.agent_id)}`;
    this.q('monitor-detail').hidden = false;
    this.q('monitor-take-over').disabled = false;
    this.status('');
    this.send({ type: 'resume', chat_id: c.chat_id, last_seq: '' });
  }

  closeChat() {
    this.open = null;
    this.q('monitor-detail').hidden = true;
    this.q('monitor-transcript').replaceChildren();
  }

  addEntry(e) {
    if (!this.open || !this.open.transcript.add(e)) return;
    const s = this.q('monitor-transcript-scroll');
    s.scrollTop = s.scrollHeight;
  }

  whisper() {
    const box = this.q('monitor-whisper-text');
    const text = box.value.trim();
    if (!this.open || !text) return;
    this.whisperN += 1;
    const id = `whisper-${Date.now().toString(36)}-${this.whisperN}`;
    if (this.send({ type: 'whisper', chat_id: this.open.id, client_msg_id: id, text })) box.value = '';
    else this.status(S.reconnecting, true);
  }

  takeOver() {
    if (!this.open) return;
    const id = this.open.id;
    this.q('monitor-take-over').disabled = true;
    if (!this.send({ type: 'take_over', chat_id: id })) {
      this.q('monitor-take-over').disabled = false;
      return;
    }
    // The reply (`chat_assigned`) opens the chat in the Chats view as the supervisor's own.
    this.closeChat();
    this.onTakenOver(id);
  }

  status(message, error) {
    const s = this.q('monitor-status');
    s.textContent = message || (this.open ? S.monitorReadOnly : '');
    s.classList.toggle('error', !!error);
  }
}
