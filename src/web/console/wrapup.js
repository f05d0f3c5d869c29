// After a chat ended: what becomes of its transcript (create an interaction, add it to an
// existing one of the same contact, or trash it), sent as `decide`.

import { S, fmt, h } from './strings.js';
import { api } from './api.js';

export class Wrapup {
  /** chatId; send(frame): false when not connected. */
  constructor(chatId, send) {
    this.chatId = chatId;
    this.send = send;
    this.reason = h('p', { class: 'wrapup-reason', 'data-testid': 'wrapup-reason' });
    this.status = h('p', { class: 'wrapup-status', 'data-testid': 'wrapup-status', role: 'status' });
    this.list = h('ul', { class: 'wrapup-list', 'data-testid': 'wrapup-interactions' });
    this.confirm = h('button', { type: 'button', class: 'primary', 'data-testid': 'wrapup-add-confirm', text: S.addConfirm, onclick: () => this.confirmAdd() });
    this.addPanel = h('div', { class: 'wrapup-add', hidden: true }, [this.list, this.confirm]);
    this.buttons = h('div', { class: 'wrapup-buttons' }, [
      h('button', { type: 'button', class: 'primary', 'data-testid': 'wrapup-create', text: S.create, onclick: () => this.decide('create') }),
      h('button', { type: 'button', 'data-testid': 'wrapup-add', text: S.add, onclick: () => this.showAdd() }),
      h('button', { type: 'button', class: 'danger', 'data-testid': 'wrapup-trash', text: S.trash, onclick: () => this.decide('trash') })
    ]);
    this.el = h('section', { class: 'wrapup', role: 'region', 'aria-label': S.wrapupTitle, 'data-testid': 'wrapup', hidden: true }, [
      h('h3', { text: S.wrapupTitle }),
      this.reason,
      this.buttons,
      this.addPanel,
      this.status
    ]);
  }

  ended(reason) {
    this.reason.textContent = reason ? fmt(S.wrapupReason, { reason }) : '';
  }

  decide(decision, interactionId) {
    const frame = { type: 'decide', chat_id: this.chatId, decision };
    if (interactionId != null) frame.interaction_id = interactionId;
    if (!this.send(frame)) {
      this.status.textContent = S.reconnecting;
      return;
    }
    for (const b of this.el.querySelectorAll('button')) b.disabled = true;
    this.status.textContent = S.deciding;
  }

  /** The node refused the decision: say why and let the agent try again. */
  refused(message) {
    this.status.textContent = message || '';
    for (const b of this.el.querySelectorAll('button')) b.disabled = false;
  }

  async showAdd() {
    this.addPanel.hidden = false;
    this.list.textContent = '';
    this.status.textContent = S.loadingInteractions;
    try {
      const list = await api(`/api/chats/${encodeURIComponent(this.chatId)}/interactions`);
      this.status.textContent = '';
      if (!Array.isArray(list) || list.length === 0) {
        this.list.appendChild(h('li', { class: 'empty', text: S.noInteractions }));
        this.confirm.hidden = true;
        return;
      }
      this.confirm.hidden = false;
      list.forEach((it, i) => {
        const rid = `wi-${this.chatId}-${it.id}`;
        const radio = h('input', { type: 'radio', name: `wi-${this.chatId}`, id: rid, value: String(it.id), 'data-testid': 'wrapup-interaction', checked: i === 0 });
        const label = h('label', { for: rid }, [document.createTextNode(fmt(S.interaction, { id: it.id, subject: it.subject || '' }))]);
        if (it.created_at) label.appendChild(h('small', { text: ` · ${new Date(it.created_at).toLocaleString()}` }));
        this.list.appendChild(h('li', {}, [radio, label]));
      });
    } catch (e) {
      this.status.textContent = fmt(S.loadFailed, { message: e.message });
    }
  }

  confirmAdd() {
    const picked = this.list.querySelector('input[type=radio]:checked');
    if (!picked) {
      this.status.textContent = S.pickInteraction;
      return;
    }
    this.decide('add', Number(picked.value));
  }
}
