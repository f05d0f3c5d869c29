// The console's list views. Past interactions: the latest ones, and one interaction's chat
// transcripts (read-only, rendered by the shared transcript renderer, so visitor text stays
// inert). Site visitors and the agent's own canned responses: see `Visitors` and `CannedAdmin`
// below (one module because the node serves a fixed list of console files).

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

// ---- Site visitors (a second list view; lives here because the node serves a fixed set of
// console modules): the live table from `watch_visitors`, the page history of one visitor,
// and proactive invitations (`invite`, answered by `invitation_result`).

const MAX_PAGES = 50; // pages the node keeps per visit

function duration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return hh ? `${hh}:${String(mm).padStart(2, '0')}:${ss}` : `${mm}:${ss}`;
}

/** A DOM-built link for an http(s) URL the visitor's browser reported; plain text otherwise. */
function urlNode(url, text) {
  const href = SbTranscript.safeHref(url);
  if (!href) return h('span', { text: text || url || '' });
  return h('a', { href, target: '_blank', rel: 'noopener noreferrer', text: text || url });
}

export class Visitors {
  /** root: the view; send(frame): false when not connected. */
  constructor({ root, send }) {
    this.root = root;
    this.send = send;
    this.rows = root.querySelector('[data-testid="visitors-rows"]');
    this.empty = root.querySelector('[data-testid="no-visitors"]');
    this.count = root.querySelector('[data-testid="visitors-count"]');
    this.result = root.querySelector('[data-testid="invite-result"]');
    this.detail = root.querySelector('[data-testid="visitor-detail"]');
    this.newOnly = root.querySelector('[data-testid="visitors-new-only"]');
    this.newOnly.addEventListener('change', () => this.render());
    this.visitors = new Map();
    this.selected = null;
    this.watching = false;
    this.ticker = null;
  }

  /** Shown: start watching (again after a reconnect). */
  watch() {
    this.watching = true;
    this.send({ type: 'watch_visitors' });
    clearInterval(this.ticker);
    this.ticker = setInterval(() => this.tick(), 1000);
  }

  unwatch() {
    if (!this.watching) return;
    this.watching = false;
    clearInterval(this.ticker);
    this.send({ type: 'unwatch_visitors' });
  }

  onSnapshot(f) {
    this.visitors.clear();
    for (const v of f.visitors || []) if (v && v.visitor_id) this.visitors.set(v.visitor_id, v);
    this.render();
  }

  /** `arrive` / `update` carry the whole record, `page` the record with only the new page. */
  onChanged(f) {
    for (const ch of f.changes || []) {
      if (!ch || !ch.visitor_id) continue;
      if (ch.kind === 'leave') {
        this.visitors.delete(ch.visitor_id);
        continue;
      }
      const v = ch.visitor;
      if (!v) continue;
      const old = this.visitors.get(ch.visitor_id);
      if (ch.kind === 'page' && old) v.pages = [...(old.pages || []), ...(v.pages || [])].slice(-MAX_PAGES);
      this.visitors.set(ch.visitor_id, v);
    }
    this.render();
  }

  who(v) {
    return (v && (v.email || v.name)) || S.anonymous;
  }

  render() {
    const onlyNew = this.newOnly.checked;
    const list = [...this.visitors.values()].filter((v) => !onlyNew || v.new).sort((a, b) => (a.started_at || 0) - (b.started_at || 0));
    this.rows.textContent = '';
    for (const v of list) this.rows.appendChild(this.row(v));
    this.empty.hidden = list.length > 0;
    this.count.textContent = fmt(S.visitorsCount, { n: list.length });
    this.renderDetail();
  }

  row(v) {
    const time = h('td', { 'data-testid': 'visitor-time', 'data-started': String(v.started_at || 0), text: duration(Date.now() - (v.started_at || Date.now())) });
    const who = h('td', { 'data-testid': 'visitor-email' }, [h('span', { text: this.who(v) })]);
    if (v.email && !v.email_verified) who.appendChild(h('span', { class: 'tag', 'data-testid': 'visitor-unverified', text: S.unverified }));
    if (v.new) who.appendChild(h('span', { class: 'tag', 'data-testid': 'visitor-new', text: S.isNew }));
    const invite = h('button', { type: 'button', class: 'primary', 'data-testid': 'visitor-invite', text: S.startChat, disabled: !!v.chatting, onclick: () => this.invite(v.visitor_id) });
    const details = h('button', { type: 'button', 'data-testid': 'visitor-details', text: S.details, 'aria-pressed': this.selected === v.visitor_id ? 'true' : 'false', onclick: () => this.select(v.visitor_id) });
    return h('tr', { 'data-testid': 'visitor-row', 'data-visitor-id': v.visitor_id, 'data-new': v.new ? 'true' : 'false', 'data-chatting': v.chatting ? 'true' : 'false', class: this.selected === v.visitor_id ? 'selected' : '' }, [
      who,
      h('td', { class: 'url', 'data-testid': 'visitor-url', title: v.url || '' }, [urlNode(v.url, v.title || v.url)]),
      h('td', { 'data-testid': 'visitor-country', text: v.country || '' }),
      h('td', { 'data-testid': 'visitor-ip', text: v.ip || '' }),
      time,
      h('td', { 'data-testid': 'visitor-chatting', text: v.chatting ? S.yes : S.no }),
      h('td', { class: 'actions' }, [details, invite])
    ]);
  }

  tick() {
    for (const td of this.rows.querySelectorAll('[data-testid="visitor-time"]')) {
      const started = Number(td.getAttribute('data-started')) || Date.now();
      td.textContent = duration(Date.now() - started);
    }
  }

  select(id) {
    this.selected = this.selected === id ? null : id;
    this.render();
    if (this.selected) {
      const first = this.detail.querySelector('textarea');
      if (first) first.focus();
    }
  }

  renderDetail() {
    const id = this.selected;
    const d = this.detail;
    d.hidden = !id;
    if (!id) {
      d.textContent = '';
      return;
    }
    const v = this.visitors.get(id);
    // Keep a message being typed across live updates.
    const typed = d.querySelector('textarea') ? d.querySelector('textarea').value : '';
    const hadFocus = d.contains(document.activeElement) && document.activeElement.tagName === 'TEXTAREA';
    d.textContent = '';
    d.appendChild(h('div', { class: 'detail-head' }, [
      h('h2', { 'data-testid': 'visitor-detail-name', text: this.who(v || { email: '' }) }),
      h('button', { type: 'button', class: 'link', text: S.closeDetails, onclick: () => this.select(id) })
    ]));
    if (!v) {
      d.appendChild(h('p', { class: 'muted', 'data-testid': 'visitor-left', text: S.visitorLeft }));
      return;
    }
    const facts = [v.name && v.email ? v.name : '', v.country, v.ip].filter(Boolean).join(' · ');
    if (facts) d.appendChild(h('p', { class: 'muted', text: facts }));
    d.appendChild(h('h3', { text: S.pages }));
    const ol = h('ol', { class: 'pages', 'data-testid': 'visitor-pages' });
    for (const pg of v.pages || []) {
      const li = h('li', { 'data-testid': 'visitor-page', 'data-url': pg.url || '' }, [
        urlNode(pg.url, pg.title || pg.url),
        h('small', { text: ` ${formatDate(pg.at)}` })
      ]);
      if (pg.title) li.appendChild(h('div', { class: 'muted small', text: pg.url || '' }));
      if (pg.referrer) li.appendChild(h('div', { class: 'muted small', text: fmt(S.referrer, { referrer: pg.referrer }) }));
      ol.appendChild(li);
    }
    d.appendChild(ol);
    const msg = h('textarea', { rows: '2', maxlength: '500', 'aria-label': S.inviteMessage, placeholder: S.inviteMessage, 'data-testid': 'visitor-invite-message' });
    msg.value = typed;
    d.appendChild(msg);
    d.appendChild(h('button', { type: 'button', class: 'primary', 'data-testid': 'visitor-invite-send', text: S.startChat, disabled: !!v.chatting, onclick: () => this.invite(id, msg.value.trim()) }));
    if (hadFocus) msg.focus();
  }

  invite(id, message) {
    const v = this.visitors.get(id);
    const frame = { type: 'invite', visitor_id: id };
    if (message) frame.message = message;
    if (!this.send(frame)) {
      this.show(S.reconnecting, 'error');
      return;
    }
    this.invitedVisitor = this.invitedVisitor || new Map();
    this.invitedVisitor.set(id, this.who(v));
    const typed = this.detail.querySelector('textarea');
    if (typed) typed.value = '';
    this.show(fmt(S.inviting, { who: this.who(v) }), 'pending');
  }

  /** `invitation_result`; returns true when the chat should open. */
  onResult(f) {
    const known = this.invitedVisitor && this.invitedVisitor.get(f.visitor_id);
    const who = known || this.who(this.visitors.get(f.visitor_id));
    const text = S.inviteResult[f.result] ? fmt(S.inviteResult[f.result], { who }) : `${who}: ${f.result}`;
    this.show(text, f.result);
    return f.result === 'accepted';
  }

  /** An error about an invitation (ref = visitor id); true when it was one. */
  onError(f) {
    if (!f.ref || !this.invitedVisitor || !this.invitedVisitor.has(f.ref)) return false;
    this.show(f.message || `error ${f.code}`, 'error');
    return true;
  }

  show(text, result) {
    this.result.textContent = text;
    this.result.setAttribute('data-result', result || '');
    this.result.hidden = !text;
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
