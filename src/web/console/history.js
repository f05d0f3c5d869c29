// The console's list views. Past interactions: the latest ones, and one interaction's chat
// transcripts (read-only, rendered by the shared transcript renderer, so visitor text stays
// inert). The agent's own canned responses: see `CannedAdmin` below (one module because the
// node serves a fixed list of console files). Site visitors: `visitors.js`.

import { S, fmt, h, formatDate } from './strings.js';
import { api, fileHref, openFile } from './api.js';

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
        if (m.visitor_email) meta.push(m.email_verified ? m.visitor_email : fmt(S.emailUnverified, { email: m.visitor_email }));
        this.detail.appendChild(
          h('article', { class: 'history-message', 'data-testid': 'history-message', 'data-chat-id': m.chat_id || '' }, [
            h('h3', { text: fmt(S.chatLabel, { id: String(m.chat_id || '').slice(0, 8) }) + (m.started_at ? ` · ${formatDate(m.started_at)}` : '') }),
            h('p', { class: 'muted', text: meta.join(' · ') }),
            list
          ])
        );
        const t = new SbTranscript.Transcript(list, { me: 'agent', prefix: 'tx-', strings: S, showOwnName: true, fileHref, fileOpen: (d) => openFile(d, (m) => this.detail.appendChild(h('p', { class: 'error', text: m }))) });
        for (const e of m.entries || []) t.add(e);
      }
    } catch (e) {
      this.detail.appendChild(h('p', { class: 'error', text: fmt(S.loadFailed, { message: e.message }) }));
    }
  }
}

// ---- Managing canned responses: list (searchable), create, edit, delete. ----

export class CannedAdmin {
  constructor(root) {
    this.root = root;
    const q = (id) => root.querySelector(`[data-testid="${id}"]`);
    this.list = q('canned-admin-list');
    this.search = q('canned-search');
    this.search.placeholder = S.cannedSearch;
    this.form = q('canned-form');
    this.heading = q('canned-form-title');
    this.f = { title: q('canned-title'), shortcut: q('canned-shortcut'), text: q('canned-text'), scope: q('canned-scope') };
    this.status = q('canned-status');
    this.del = q('canned-delete');
    this.editing = null;
    this.search.addEventListener('input', () => {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.load(), 200);
    });
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.save();
    });
    q('canned-new').addEventListener('click', () => this.edit(null));
    this.del.addEventListener('click', () => this.remove());
  }

  async load() {
    const seq = (this.seq = (this.seq || 0) + 1);
    let items;
    try {
      items = await api(`/api/canned?q=${encodeURIComponent(this.search.value.trim())}`);
    } catch (e) {
      this.status.textContent = fmt(S.loadFailed, { message: e.message });
      return;
    }
    if (seq !== this.seq) return;
    this.list.textContent = '';
    if (!Array.isArray(items) || !items.length) {
      this.list.appendChild(h('li', { class: 'empty', text: S.cannedEmpty }));
      return;
    }
    for (const it of items) {
      const btn = h('button', { type: 'button', class: 'history-item', 'data-testid': 'canned-admin-item', 'data-id': String(it.id), 'aria-current': this.editing && this.editing.id === it.id ? 'true' : 'false' }, [
        h('strong', { text: `/${it.shortcut} · ${it.title}` }),
        h('small', { text: it.scope === 'shared' ? S.cannedShared : S.cannedPersonal })
      ]);
      btn.addEventListener('click', () => this.edit(it));
      this.list.appendChild(h('li', {}, [btn]));
    }
  }

  edit(it) {
    this.editing = it;
    this.heading.textContent = it ? S.cannedEdit : S.cannedNew;
    this.f.title.value = it ? it.title : '';
    this.f.shortcut.value = it ? it.shortcut : '';
    this.f.text.value = it ? it.text : '';
    this.f.scope.value = it ? it.scope : 'personal';
    this.f.scope.disabled = !!it;
    this.del.hidden = !it;
    this.status.textContent = '';
    for (const b of this.list.querySelectorAll('.history-item')) b.setAttribute('aria-current', it && b.dataset.id === String(it.id) ? 'true' : 'false');
    this.f.title.focus();
  }

  async save() {
    const body = { title: this.f.title.value.trim(), shortcut: this.f.shortcut.value.trim().replace(/^\//, ''), text: this.f.text.value, scope: this.f.scope.value };
    try {
      const it = this.editing
        ? await api(`/api/canned/${encodeURIComponent(this.editing.id)}`, { method: 'PUT', body })
        : await api('/api/canned', { method: 'POST', body });
      this.edit(it && it.id != null ? it : null);
      this.status.textContent = S.cannedSaved;
      this.load();
    } catch (e) {
      this.status.textContent = e.message;
    }
  }

  async remove() {
    if (!this.editing) return;
    try {
      await api(`/api/canned/${encodeURIComponent(this.editing.id)}`, { method: 'DELETE' });
      this.edit(null);
      this.status.textContent = S.cannedDeleted;
      this.load();
    } catch (e) {
      this.status.textContent = e.message;
    }
  }
}
