// The console's list views. Past interactions: the stored chats, searched and filtered through
// `GET /api/history` (newest first, a page at a time), and one interaction's chat transcripts
// (read-only, rendered by the shared transcript renderer, so visitor text stays inert). The
// agent's own canned responses: see `CannedAdmin` below (one module because the node serves a
// fixed list of console files). Site visitors: `visitors.js`.

import { S, fmt, h, formatDate } from './strings.js';
import { api, fileHref, openFile } from './api.js';
import { ratingLine } from './after-chat.js';

const PAGE = 25;

/** "45 s", "12 min", "2 h 5 min". */
function formatDuration(ms) {
  const s = Math.max(0, Math.round((Number(ms) || 0) / 1000));
  if (s < 60) return fmt(S.durationSeconds, { n: s });
  const m = Math.round(s / 60);
  if (m < 60) return fmt(S.durationMinutes, { n: m });
  return fmt(S.durationHours, { h: Math.floor(m / 60), m: m % 60 });
}

/** Local midnight of a `YYYY-MM-DD` date input, in ms; `days` later when given. */
function dayStart(value, days = 0) {
  const d = new Date(`${value}T00:00`);
  d.setDate(d.getDate() + days);
  return d.getTime();
}

export class History {
  constructor({ list, detail, refresh }) {
    this.list = list;
    this.detail = detail;
    this.form = this.searchForm();
    list.parentElement.insertBefore(this.form, list);
    this.more = h('button', { type: 'button', class: 'link', 'data-testid': 'history-more', hidden: true, text: S.historyMore });
    list.parentElement.appendChild(this.more);
    this.more.addEventListener('click', () => this.page(this.next));
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.load();
    });
    refresh.addEventListener('click', () => this.load());
    this.queuesLoaded = false;
  }

  /** The filters above the list; every field optional. */
  searchForm() {
    const field = (label, input) => h('label', { class: 'history-field' }, [h('span', { text: label }), input]);
    const input = (testid, type, placeholder) => h('input', { type, 'data-testid': testid, placeholder: placeholder || '', autocomplete: 'off' });
    const select = (testid, options) => h('select', { 'data-testid': testid }, options.map(([value, text]) => h('option', { value, text })));
    this.f = {
      q: input('history-q', 'search', S.historyWords),
      email: input('history-email', 'email', S.historyEmail),
      name: input('history-name', 'text', S.historyName),
      agent: input('history-agent', 'text', S.historyAgent),
      queue: select('history-queue', [['', S.historyAnyQueue]]),
      decision: select('history-decision', [['', S.historyAnyDecision], ['create', S.create], ['add', S.add], ['keep', S.autoKept]]),
      from: input('history-from', 'date'),
      to: input('history-to', 'date'),
      empty: select('history-empty', [['', S.historyEmptyShow], ['false', S.historyEmptyHide], ['true', S.historyEmptyOnly]])
    };
    return h('form', { class: 'history-search', 'data-testid': 'history-search', role: 'search' }, [
      field(S.historySearch, this.f.q),
      h('details', {}, [
        h('summary', { text: S.historyFilters }),
        field(S.historyEmail, this.f.email),
        field(S.historyName, this.f.name),
        field(S.historyAgent, this.f.agent),
        field(S.historyQueue, this.f.queue),
        field(S.historyDecision, this.f.decision),
        field(S.historyFrom, this.f.from),
        field(S.historyTo, this.f.to),
        field(S.historyEmpty, this.f.empty)
      ]),
      h('button', { type: 'submit', 'data-testid': 'history-search-submit', text: S.historySearch })
    ]);
  }

  async loadQueues() {
    if (this.queuesLoaded) return;
    try {
      const queues = await api('/api/queues');
      for (const q of Array.isArray(queues) ? queues : []) this.f.queue.appendChild(h('option', { value: q, text: q }));
      this.queuesLoaded = true;
    } catch (e) {
      // The filter still works without the list; the next load tries again.
    }
  }

  /** The query string of the current filters, without empty ones. */
  query() {
    const p = new URLSearchParams();
    const text = (k) => this.f[k].value.trim();
    for (const k of ['q', 'email', 'name', 'agent']) if (text(k)) p.set(k, text(k));
    for (const k of ['queue', 'decision', 'empty']) if (this.f[k].value) p.set(k, this.f[k].value);
    if (this.f.from.value) p.set('from', String(dayStart(this.f.from.value)));
    if (this.f.to.value) p.set('to', String(dayStart(this.f.to.value, 1)));
    p.set('limit', String(PAGE));
    return p;
  }

  async load() {
    this.loadQueues();
    this.list.textContent = '';
    this.filters = this.query();
    await this.page(null);
  }

  /** Appends the page after `cursor` (the first page for `null`). */
  async page(cursor) {
    const seq = (this.seq = (this.seq || 0) + 1);
    const p = new URLSearchParams(this.filters);
    if (cursor) p.set('after', cursor);
    this.more.hidden = true;
    let data;
    try {
      data = await api(`/api/history?${p}`);
    } catch (e) {
      if (seq === this.seq) this.list.appendChild(h('li', { class: 'error', 'data-testid': 'history-error', text: fmt(S.loadFailed, { message: e.message }) }));
      return;
    }
    if (seq !== this.seq) return;
    const items = (data && data.items) || [];
    if (!cursor && items.length === 0) {
      this.list.appendChild(h('li', { class: 'empty', text: this.filters.toString() === `limit=${PAGE}` ? S.noHistory : S.historyNoMatch }));
    }
    for (const it of items) this.list.appendChild(h('li', {}, [this.row(it)]));
    this.next = data && data.next;
    this.more.hidden = !this.next;
  }

  /** One stored chat: subject, then visitor, e-mail (marked unless verified), agent, queue, duration. */
  row(it) {
    const who = [it.visitor_name || S.historyNoName];
    if (it.visitor_email) who.push(it.email_verified ? it.visitor_email : fmt(S.unverifiedEmail, { email: it.visitor_email }));
    const meta = [it.agent_name || (it.agent_id != null ? `#${it.agent_id}` : S.historyNoAgent), it.queue, formatDuration(it.duration_ms), formatDate(it.started_at)];
    if (it.auto_kept) meta.push(S.autoKept);
    const btn = h('button', { type: 'button', class: 'history-item', 'data-testid': 'history-item', 'data-id': String(it.interaction_id), 'data-chat-id': it.chat_id }, [
      h('strong', { text: fmt(S.interaction, { id: it.interaction_id, subject: it.subject || '' }) }),
      h('span', { 'data-testid': 'history-visitor', text: who.join(' · ') }),
      h('small', { 'data-testid': 'history-meta', text: meta.join(' · ') })
    ]);
    btn.addEventListener('click', () => this.show(it.interaction_id));
    return btn;
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
        if (m.visitor_name) meta.push(m.visitor_name);
        if (m.visitor_email) meta.push(m.email_verified ? m.visitor_email : fmt(S.unverifiedEmail, { email: m.visitor_email }));
        this.detail.appendChild(
          h('article', { class: 'history-message', 'data-testid': 'history-message', 'data-chat-id': m.chat_id || '' }, [
            h('h3', { text: fmt(S.chatLabel, { id: String(m.chat_id || '').slice(0, 8) }) + (m.started_at ? ` · ${formatDate(m.started_at)}` : '') }),
            h('p', { class: 'muted', text: meta.join(' · ') }),
            m.rating ? ratingLine(m.rating) : null,
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
