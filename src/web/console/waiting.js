// The Waiting list: requests of the agent's queues that nobody has taken (every available agent
// refused or missed them, or nobody is available), live from `waiting` frames, with the
// visitor's name, e-mail (marked unverified: it is what they typed), question, page and how
// long they have waited, and a Pick button (of agents picking at once, one wins).

import { S, fmt, h } from './strings.js';

function waited(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  return s < 60 ? fmt(S.waitedSeconds, { n: s }) : fmt(S.waitedMinutes, { n: Math.floor(s / 60) });
}

export class Waiting {
  constructor(list, empty, { pick }) {
    this.list = list;
    this.empty = empty;
    this.pick = pick;
    /** queue -> requests (as the node sent them, oldest first) */
    this.queues = new Map();
    this.busy = new Set();
    setInterval(() => this.tick(), 1000);
  }

  onWaiting(f) {
    this.queues.set(f.queue, Array.isArray(f.requests) ? f.requests : []);
    this.render();
  }

  /** A pick failed (taken by someone else, or no capacity): the list stays as the node says. */
  onError(f) {
    if (!f.ref || !this.busy.has(f.ref)) return false;
    this.busy.delete(f.ref);
    this.render();
    return false;
  }

  render() {
    const all = [];
    for (const [queue, reqs] of this.queues) for (const r of reqs) all.push({ queue, ...r });
    all.sort((a, b) => a.created_at - b.created_at);
    this.list.replaceChildren(
      ...all.map((r) => {
        const busy = this.busy.has(r.chat_id);
        return h('li', { class: 'offer waiting', 'data-testid': 'waiting-item', 'data-chat-id': r.chat_id }, [
          h('div', { class: 'offer-head' }, [
            h('strong', { text: r.name || S.anonymous }),
            h('span', { class: 'offer-countdown', 'data-testid': 'waiting-time', 'data-created': String(r.created_at), text: waited(Date.now() - r.created_at) })
          ]),
          r.email ? h('span', { class: 'offer-email', 'data-testid': 'waiting-email', text: fmt(S.unverifiedEmail, { email: r.email }) }) : null,
          h('span', { class: 'offer-queue', text: r.queue }),
          r.question ? h('p', { class: 'offer-question', text: r.question }) : null,
          r.page_url ? h('span', { class: 'offer-email', text: r.page_url }) : null,
          h('div', { class: 'offer-buttons' }, [
            h('button', {
              type: 'button', class: 'primary', 'data-testid': 'waiting-pick', text: S.pick, disabled: busy,
              onclick: () => {
                this.busy.add(r.chat_id);
                this.render();
                this.pick(r.chat_id);
              }
            })
          ])
        ]);
      })
    );
    this.empty.hidden = all.length > 0;
    for (const id of [...this.busy]) if (!all.some((r) => r.chat_id === id)) this.busy.delete(id);
  }

  tick() {
    for (const el of this.list.querySelectorAll('[data-created]')) el.textContent = waited(Date.now() - Number(el.getAttribute('data-created')));
  }
}
