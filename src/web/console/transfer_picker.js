// The transfer form of a chat: a picker of agents (name, status, load; only those who can take
// a chat now are selectable) and queues, read from the node when the form opens, and an
// internal note for whoever takes the chat (the visitor never sees it).

import { S, fmt, h } from './strings.js';
import { api } from './api.js';

export class TransferPicker {
  /** me: this agent's id; submit({to_agent | to_queue, note}): sends the transfer. */
  constructor(me, submit) {
    this.me = String(me);
    this.submit = submit;
    this.select = h('select', { 'aria-label': S.transferTo, 'data-testid': 'chat-transfer-target' });
    this.noteInput = h('textarea', { rows: '2', maxlength: '1000', placeholder: S.transferNote, 'aria-label': S.transferNote, 'data-testid': 'chat-transfer-note' });
    this.status = h('span', { class: 'tool-status', role: 'status', 'data-testid': 'chat-transfer-status' });
    this.form = h('form', { class: 'tool-form transfer-form', 'data-testid': 'chat-transfer-form', hidden: true }, [
      this.select,
      this.noteInput,
      h('div', { class: 'tool-buttons' }, [
        h('button', { type: 'submit', class: 'primary', 'data-testid': 'chat-transfer-submit', text: S.transferSubmit }),
        h('button', { type: 'button', 'data-testid': 'chat-transfer-cancel', text: S.transferCancel, onclick: () => this.onCancel && this.onCancel() })
      ]),
      this.status
    ]);
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.send();
    });
  }

  /** Reads the agents and queues afresh (statuses and loads change all the time). */
  async load() {
    this.status.textContent = S.transferLoading;
    this.select.textContent = '';
    this.select.appendChild(h('option', { value: '', text: S.transferChoose }));
    try {
      const [agents, queues] = await Promise.all([api('/api/agents/roster'), api('/api/queues')]);
      const people = h('optgroup', { label: S.transferAgents });
      for (const a of Array.isArray(agents) ? agents : []) {
        if (String(a.id) === this.me) continue;
        const text = fmt(S.transferAgentOption, { name: a.name, status: S[a.status] || a.status, load: a.load, max: a.max_chats });
        people.appendChild(h('option', { value: `agent:${a.id}`, text, disabled: !a.can_take, 'data-status': a.status }));
      }
      const qs = h('optgroup', { label: S.transferQueues });
      for (const q of Array.isArray(queues) ? queues : []) qs.appendChild(h('option', { value: `queue:${q}`, text: fmt(S.queue, { queue: q }) }));
      this.select.appendChild(people);
      this.select.appendChild(qs);
      this.status.textContent = '';
    } catch (e) {
      this.status.textContent = fmt(S.loadFailed, { message: e.message });
    }
  }

  send() {
    const v = this.select.value;
    if (!v) {
      this.status.textContent = S.transferNeedOne;
      return;
    }
    const [kind, target] = [v.slice(0, v.indexOf(':')), v.slice(v.indexOf(':') + 1)];
    const frame = kind === 'agent' ? { to_agent: Number(target) } : { to_queue: target };
    const note = this.noteInput.value.trim();
    if (note) frame.note = note;
    this.submit(frame);
  }

  say(text) {
    this.status.textContent = text || '';
  }
}
