// Admin screen: queues. List them; create one; rename one (the node refuses while the queue
// has live chats, and says so); set a queue's offline text and business hours (a time zone and
// per-day intervals). Widgets watching the queue get the change at once.

import { api } from '../api.js';
import { h, fmt } from '../strings.js';
import { A } from './strings.js';
import { statusLine, act, field, table, cell, button } from './common.js';

const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];

/** "09:00-12:00, 13:00-17:00" -> [["09:00","12:00"],["13:00","17:00"]]; throws when malformed. */
function parseIntervals(day, text) {
  return text.split(',').map((s) => s.trim()).filter(Boolean).map((s) => {
    const m = /^(\d\d:\d\d)\s*-\s*(\d\d:\d\d)$/.exec(s);
    if (!m) throw new Error(fmt(A.badInterval, { day: A.days[day] }));
    return [m[1], m[2]];
  });
}

export class QueuesScreen {
  constructor() {
    this.status = statusLine('admin-queues-status');
    this.list = table('admin-queues', [A.colName, A.offlineText, A.hasHours, '']);
    this.current = null;
    const name = field('admin-queue-new-name', A.newQueue, 'text', { maxlength: '64', pattern: '[a-z0-9_-]+' });
    const create = h('button', { type: 'submit', class: 'primary', 'data-testid': 'admin-queue-create', text: A.create });
    const createForm = h('form', { class: 'admin-form admin-inline', novalidate: true }, [name.label, name.input, create]);
    createForm.addEventListener('submit', (e) => {
      e.preventDefault();
      act(create, this.status, async () => {
        const q = await api('/api/admin/queues', { method: 'POST', body: { name: name.input.value.trim() } });
        name.input.value = '';
        await this.load();
        this.select(q);
        this.status.say(A.saved);
      });
    });

    this.f = {
      offline: field('admin-queue-offline', A.offlineText, 'textarea', { rows: '3', maxlength: '1000' }),
      tz: field('admin-queue-tz', A.timezone, 'text', { maxlength: '64' })
    };
    this.dayInputs = {};
    const dayRows = DAYS.map((d) => {
      const f = field(`admin-queue-day-${d}`, A.days[d], 'text', { placeholder: '09:00-17:00' });
      this.dayInputs[d] = f.input;
      return h('div', { class: 'admin-day' }, [f.label, f.input]);
    });
    this.title = h('h3', { 'data-testid': 'admin-queue-form-title' });
    this.save = h('button', { type: 'submit', class: 'primary', 'data-testid': 'admin-queue-save', text: A.save });
    this.form = h('form', { class: 'admin-form', 'data-testid': 'admin-queue-form', novalidate: true, hidden: true }, [
      this.title, this.f.offline.label, this.f.offline.input,
      h('fieldset', {}, [h('legend', { text: A.hours }), h('p', { class: 'muted', text: A.hoursHint }), this.f.tz.label, this.f.tz.input, ...dayRows]),
      h('div', { class: 'admin-buttons' }, [this.save])
    ]);
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      act(this.save, this.status, () => this.store());
    });
    this.el = h('div', { class: 'admin-screen', 'data-testid': 'admin-queues-screen' }, [
      h('div', { class: 'admin-main' }, [h('h2', { text: A.queuesTitle }), this.status.el, createForm, this.list.table]),
      h('div', { class: 'admin-side' }, [this.form])
    ]);
  }

  async load() {
    await act(null, this.status, async () => {
      const queues = await api('/api/admin/queues');
      this.list.body.replaceChildren(...queues.map((q) => h('tr', { 'data-testid': `admin-queue-${q.name}` }, [
        cell(q.name), cell(q.offline_text, { class: 'admin-clip' }), cell(q.business_hours ? q.business_hours.timezone : A.noHours),
        h('td', { class: 'admin-actions' }, [
          button(A.edit, `admin-queue-edit-${q.name}`, () => this.select(q)),
          button(A.rename, `admin-queue-rename-${q.name}`, (e) => {
            const name = window.prompt(fmt(A.renamePrompt, { name: q.name }), q.name);
            if (!name || name.trim() === q.name) return;
            act(e.target, this.status, async () => {
              const renamed = await api(`/api/admin/queues/${encodeURIComponent(q.name)}/rename`, { method: 'POST', body: { name: name.trim() } });
              if (this.current && this.current.name === q.name) this.current = renamed;
              await this.load();
              this.status.say(A.saved);
            });
          })
        ])
      ])));
      if (this.current) this.select(queues.find((q) => q.name === this.current.name) || null);
    });
  }

  select(q) {
    this.current = q;
    this.form.hidden = !q;
    if (!q) return;
    this.title.textContent = fmt(A.editQueue, { name: q.name });
    this.f.offline.input.value = q.offline_text || '';
    const hours = q.business_hours;
    this.f.tz.input.value = hours ? hours.timezone : '';
    for (const d of DAYS) {
      const list = (hours && hours.days && hours.days[d]) || [];
      this.dayInputs[d].value = list.map(([a, b]) => `${a}-${b}`).join(', ');
    }
  }

  async store() {
    const tz = this.f.tz.input.value.trim();
    let business_hours = null;
    if (tz) {
      const days = {};
      for (const d of DAYS) days[d] = parseIntervals(d, this.dayInputs[d].value);
      business_hours = { timezone: tz, days };
    }
    const name = this.current.name;
    const q = await api(`/api/admin/queues/${encodeURIComponent(name)}`, {
      method: 'PUT',
      body: { offline_text: this.f.offline.input.value, business_hours }
    });
    this.current = q;
    await this.load();
    this.status.say(A.saved);
  }
}
