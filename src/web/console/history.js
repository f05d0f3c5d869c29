// Past interactions: the latest ones, and one interaction's chat transcripts (read-only,
// rendered by the shared transcript renderer, so visitor text stays inert).

import { S, fmt, h, formatDate } from './strings.js';
import { api } from './api.js';

export class History {
  constructor({ list, detail, refresh }) {
    this.list = list;
    this.detail = detail;
    refresh.addEventListener('click', () => this.load());
  }

  async load() {
    this.list.textContent = '';
    try {
      const items = await api('/api/interactions?limit=50');
      if (!Array.isArray(items) || items.length === 0) {
        this.list.appendChild(h('li', { class: 'empty', text: S.noHistory }));
        return;
      }
      for (const it of items) {
        const btn = h('button', { type: 'button', class: 'history-item', 'data-testid': 'history-item', 'data-id': String(it.id) }, [
          h('strong', { text: fmt(S.interaction, { id: it.id, subject: it.subject || '' }) }),
          h('small', { text: formatDate(it.created_at) + (it.auto_kept ? ` · ${S.autoKept}` : '') })
        ]);
        btn.addEventListener('click', () => this.show(it.id));
        this.list.appendChild(h('li', {}, [btn]));
      }
    } catch (e) {
      this.list.appendChild(h('li', { class: 'error', text: fmt(S.loadFailed, { message: e.message }) }));
    }
  }

  async show(id) {
    this.detail.textContent = '';
    for (const b of this.list.querySelectorAll('.history-item')) b.setAttribute('aria-current', b.dataset.id === String(id) ? 'true' : 'false');
    try {
      const data = await api(`/api/interactions/${encodeURIComponent(id)}`);
      const it = data.interaction || {};
      this.detail.appendChild(h('h2', { 'data-testid': 'history-subject', text: fmt(S.interaction, { id: it.id, subject: it.subject || '' }) }));
      this.detail.appendChild(h('p', { class: 'muted', text: fmt(S.createdAt, { at: formatDate(it.created_at) }) + (it.auto_kept ? ` · ${S.autoKept}` : '') }));
      for (const m of data.messages || []) {
        const list = h('ol', { class: 'log', 'data-testid': 'history-transcript' });
        const meta = [fmt(S.decision, { decision: m.decision || '' })];
        if (m.end_reason) meta.push(fmt(S.endReason, { reason: m.end_reason }));
        if (m.queue) meta.push(fmt(S.queue, { queue: m.queue }));
        this.detail.appendChild(
          h('article', { class: 'history-message', 'data-testid': 'history-message', 'data-chat-id': m.chat_id || '' }, [
            h('h3', { text: fmt(S.chatLabel, { id: String(m.chat_id || '').slice(0, 8) }) + (m.started_at ? ` · ${formatDate(m.started_at)}` : '') }),
            h('p', { class: 'muted', text: meta.join(' · ') }),
            list
          ])
        );
        const t = new SbTranscript.Transcript(list, { me: 'agent', prefix: 'tx-', strings: S, showOwnName: true });
        for (const e of m.entries || []) t.add(e);
      }
    } catch (e) {
      this.detail.appendChild(h('p', { class: 'error', text: fmt(S.loadFailed, { message: e.message }) }));
    }
  }
}
