// Admin screen: data protection. Find a contact by e-mail or visitor id; export everything
// stored about it as a JSON file; erase it after a confirmation; read the audit log page by
// page, optionally of one action.

import { api } from '../api.js';
import { h, fmt, formatDate } from '../strings.js';
import { A } from './strings.js';
import { statusLine, act, field, table, cell, button } from './common.js';

/** Offers `doc` to the browser as the download `name`. */
function download(doc, name) {
  const url = URL.createObjectURL(new Blob([JSON.stringify(doc, null, 2)], { type: 'application/json' }));
  const a = h('a', { href: url, download: name, rel: 'noopener' });
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

export class PrivacyScreen {
  constructor() {
    this.status = statusLine('admin-privacy-status');
    const email = field('admin-privacy-email', A.byEmail, 'email', { maxlength: '254' });
    const visitor = field('admin-privacy-visitor', A.byVisitor, 'text', { maxlength: '64' });
    const find = h('button', { type: 'submit', class: 'primary', 'data-testid': 'admin-privacy-find', text: A.find });
    const form = h('form', { class: 'admin-form admin-inline', novalidate: true }, [email.label, email.input, visitor.label, visitor.input, find]);
    this.contacts = table('admin-contacts', ['#', A.byEmail, A.colName, A.byVisitor, '']);
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      act(find, this.status, async () => {
        const q = new URLSearchParams();
        if (email.input.value.trim()) q.set('email', email.input.value.trim());
        if (visitor.input.value.trim()) q.set('visitor_id', visitor.input.value.trim());
        this.showContacts(await api(`/api/admin/contacts?${q}`));
      });
    });

    this.action = field('admin-audit-action', A.actionFilter, 'text', { maxlength: '64' });
    this.audit = table('admin-audit', [A.colAt, A.colActor, A.colAction, A.colTarget, A.colDetail]);
    this.more = button(A.older, 'admin-audit-older', () => this.loadAudit(this.next));
    const filter = h('form', { class: 'admin-form admin-inline', novalidate: true }, [this.action.label, this.action.input, h('button', { type: 'submit', text: A.find, 'data-testid': 'admin-audit-filter' })]);
    filter.addEventListener('submit', (e) => {
      e.preventDefault();
      this.loadAudit(null);
    });
    this.el = h('div', { class: 'admin-screen admin-stack', 'data-testid': 'admin-privacy-screen' }, [
      h('h2', { text: A.privacyTitle }), this.status.el, form, this.contacts.table,
      h('h2', { text: A.auditTitle }), filter, this.audit.table, this.more
    ]);
  }

  load() {
    return this.loadAudit(null);
  }

  showContacts(list) {
    if (!list.length) this.status.say(A.noContacts);
    this.contacts.body.replaceChildren(...list.map((c) => {
      const who = c.email || c.visitor_id || `#${c.id}`;
      return h('tr', { 'data-testid': `admin-contact-${c.id}` }, [
        cell(c.id), cell(c.email), cell(c.name), cell(c.visitor_id),
        h('td', { class: 'admin-actions' }, [
          button(A.exportJson, `admin-contact-export-${c.id}`, (e) => act(e.target, this.status, async () => {
            download(await api(`/api/admin/contacts/${c.id}/export`), `contact-${c.id}.json`);
          })),
          button(A.erase, `admin-contact-erase-${c.id}`, (e) => {
            if (!window.confirm(fmt(A.confirmErase, { who }))) return;
            act(e.target, this.status, async () => {
              const r = await api(`/api/admin/contacts/${c.id}/erase`, { method: 'POST' });
              const counts = Object.entries(r.erased || {}).map(([k, v]) => `${k} ${v}`).join(', ');
              this.status.say(fmt(A.erasedReport, { counts }));
              e.target.closest('tr').remove();
              await this.loadAudit(null);
            });
          }, 'danger')
        ])
      ]);
    }));
  }

  /** One page of the audit log, newest first; `before` continues the list. */
  async loadAudit(before) {
    await act(null, this.status, async () => {
      const q = new URLSearchParams({ limit: '50' });
      if (before) q.set('before', before);
      const action = this.action.input.value.trim();
      if (action) q.set('action', action);
      const page = await api(`/api/admin/audit?${q}`);
      this.next = page.next_before;
      const rows = page.entries.map((e) => h('tr', { 'data-testid': `admin-audit-${e.id}` }, [
        cell(formatDate(e.at)), cell(e.actor), cell(e.action), cell(e.target), cell(JSON.stringify(e.detail), { class: 'admin-clip' })
      ]));
      if (before) this.audit.body.append(...rows);
      else this.audit.body.replaceChildren(...rows);
      this.more.hidden = page.entries.length < 50 || !page.next_before;
    });
  }
}
