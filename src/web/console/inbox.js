// The inbox of offline messages ("leave us a message"): loaded over HTTP, kept live by
// `inbox_changed` frames; an agent claims a message (one agent wins across nodes) and marks it
// done. Everything the visitor wrote is shown as text; the e-mail is marked unverified.

import { S, fmt, h } from './strings.js';
import { api } from './api.js';

export class Inbox {
  constructor(list, empty, { me, onError }) {
    this.list = list;
    this.empty = empty;
    this.me = me;
    this.onError = onError;
    /** id -> item */
    this.items = new Map();
  }

  async load() {
    try {
      const items = await api('/api/inbox');
      this.items = new Map(items.map((i) => [i.id, i]));
      this.render();
    } catch (e) {
      this.onError(fmt(S.inboxError, { message: e.message }));
    }
  }

  onChanged(f) {
    const i = f.item;
    if (!i) return;
    if (i.status === 'done') this.items.delete(i.id);
    else this.items.set(i.id, i);
    this.render();
  }

  async work(id, what) {
    try {
      const i = await api(`/api/inbox/${encodeURIComponent(id)}/${what}`, { method: 'POST', body: {} });
      this.onChanged({ item: i });
    } catch (e) {
      this.onError(e.message);
      this.load();
    }
  }

  render() {
    const items = [...this.items.values()].sort((a, b) => b.created_at - a.created_at);
    this.list.replaceChildren(
      ...items.map((i) => {
        const mine = i.claimed_by === this.me;
        const buttons = [];
        if (i.status === 'open') buttons.push(h('button', { type: 'button', class: 'primary', 'data-testid': 'inbox-claim', text: S.claim, onclick: () => this.work(i.id, 'claim') }));
        if (i.status === 'open' || mine) buttons.push(h('button', { type: 'button', 'data-testid': 'inbox-done', text: S.markDone, onclick: () => this.work(i.id, 'done') }));
        return h('li', { class: 'offer inbox-item', 'data-testid': 'inbox-item', 'data-id': i.id, 'data-status': i.status }, [
          h('div', { class: 'offer-head' }, [
            h('strong', { text: i.name || S.anonymous }),
            h('span', { class: 'offer-countdown', text: new Date(i.created_at).toLocaleString() })
          ]),
          h('span', { class: 'offer-email', 'data-testid': 'inbox-email', text: fmt(S.unverifiedEmail, { email: i.email }) }),
          h('span', { class: 'offer-queue', text: i.queue }),
          h('p', { class: 'offer-question', 'data-testid': 'inbox-message', text: i.message }),
          i.page_url ? h('span', { class: 'offer-email', text: i.page_url }) : null,
          i.status === 'claimed' ? h('span', { class: 'offer-email', 'data-testid': 'inbox-claimed', text: fmt(S.claimedBy, { name: mine ? S.you : i.claimed_by_name }) }) : null,
          h('div', { class: 'offer-buttons' }, buttons)
        ]);
      })
    );
    this.empty.hidden = items.length > 0;
  }
}
