// Admin screen: outgoing webhooks. List endpoints; register one with its events; enable or
// disable; rotate the secret (shown this once); delete; read an endpoint's delivery log page by
// page and redeliver an event.

import { api } from '../api.js';
import { h, fmt, formatDate } from '../strings.js';
import { A } from './strings.js';
import { statusLine, act, field, table, cell, button } from './common.js';

export class WebhooksScreen {
  constructor() {
    this.status = statusLine('admin-webhooks-status');
    this.secret = h('p', { class: 'admin-secret', role: 'status', 'data-testid': 'admin-webhook-secret', hidden: true });
    this.list = table('admin-webhooks', [A.colUrl, A.colEvents, A.colState, '']);
    this.types = [];
    const f = (this.f = {
      url: field('admin-webhook-url', A.url, 'url', { maxlength: '2000', placeholder: 'https://' }),
      description: field('admin-webhook-description', A.description, 'text', { maxlength: '200' })
    });
    this.events = h('fieldset', { class: 'admin-checks', 'data-testid': 'admin-webhook-events' });
    const create = h('button', { type: 'submit', class: 'primary', 'data-testid': 'admin-webhook-create', text: A.create });
    const form = h('form', { class: 'admin-form', 'data-testid': 'admin-webhook-form', novalidate: true }, [
      h('h3', { text: A.newWebhook }), f.url.label, f.url.input, f.description.label, f.description.input, this.events,
      h('div', { class: 'admin-buttons' }, [create])
    ]);
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      act(create, this.status, async () => {
        const events = [...this.events.querySelectorAll('input:checked')].map((i) => i.value);
        const r = await api('/api/admin/webhooks', { method: 'POST', body: { url: f.url.input.value.trim(), description: f.description.input.value, events } });
        f.url.input.value = '';
        f.description.input.value = '';
        this.showSecret(r);
        await this.load();
      });
    });
    this.log = table('admin-deliveries', [A.colAt, A.colEvent, A.colAttempt, A.colOutcome, '']);
    this.logTitle = h('h3', { 'data-testid': 'admin-deliveries-title' });
    this.more = button(A.older, 'admin-deliveries-older', () => this.deliveries(this.endpoint, this.next));
    this.logBox = h('div', { hidden: true }, [this.logTitle, this.log.table, this.more]);
    this.el = h('div', { class: 'admin-screen', 'data-testid': 'admin-webhooks-screen' }, [
      h('div', { class: 'admin-main' }, [h('h2', { text: A.webhooksTitle }), this.status.el, this.secret, this.list.table, this.logBox]),
      h('div', { class: 'admin-side' }, [form])
    ]);
  }

  /** A just-set secret, shown once: the node never returns it again. */
  showSecret(r) {
    this.secret.hidden = !r.secret;
    if (r.secret) this.secret.textContent = fmt(A.secretOnce, { id: r.endpoint.id, secret: r.secret });
  }

  async load() {
    await act(null, this.status, async () => {
      if (!this.types.length) {
        this.types = await api('/api/admin/webhooks/event-types');
        // Types not emitted yet can be subscribed to; the description says what each is.
        this.events.replaceChildren(h('legend', { text: A.events }), ...this.types.map((t) =>
          h('label', { title: t.description || '' }, [h('input', { type: 'checkbox', value: t.name, 'data-testid': `admin-webhook-event-${t.name}` }), document.createTextNode(` ${t.name}`)])));
      }
      const list = await api('/api/admin/webhooks');
      this.list.body.replaceChildren(...list.map((e) => this.row(e)));
    });
  }

  row(e) {
    const patch = (b, body) => act(b, this.status, async () => {
      const r = await api(`/api/admin/webhooks/${e.id}`, { method: 'PATCH', body });
      this.showSecret(r);
      await this.load();
    });
    const state = e.enabled ? A.enabled : e.disabled_reason ? `${A.disabled}: ${e.disabled_reason}` : A.disabled;
    return h('tr', { 'data-testid': `admin-webhook-${e.id}` }, [
      cell(e.url, { class: 'admin-clip' }), cell(e.events.join(', ')),
      cell(e.consecutive_failures ? `${state} (${fmt(A.failures, { n: e.consecutive_failures })})` : state, { 'data-testid': `admin-webhook-state-${e.id}` }),
      h('td', { class: 'admin-actions' }, [
        button(e.enabled ? A.disable : A.enable, `admin-webhook-toggle-${e.id}`, (ev) => patch(ev.target, { enabled: !e.enabled })),
        button(A.rotate, `admin-webhook-rotate-${e.id}`, (ev) => patch(ev.target, { rotate_secret: true })),
        button(A.deliveries, `admin-webhook-deliveries-${e.id}`, () => this.deliveries(e, null)),
        button(A.del, `admin-webhook-delete-${e.id}`, (ev) => {
          if (window.confirm(fmt(A.confirmDeleteHook, { url: e.url }))) act(ev.target, this.status, async () => {
            await api(`/api/admin/webhooks/${e.id}`, { method: 'DELETE' });
            if (this.endpoint && this.endpoint.id === e.id) this.logBox.hidden = true;
            await this.load();
          });
        }, 'danger')
      ])
    ]);
  }

  /** One page of an endpoint's delivery log, newest first; `before` continues a list. */
  async deliveries(e, before) {
    await act(null, this.status, async () => {
      const q = before ? `?before=${before}&limit=50` : '?limit=50';
      const page = await api(`/api/admin/webhooks/${e.id}/deliveries${q}`);
      this.endpoint = e;
      this.next = page.next_before;
      this.logBox.hidden = false;
      this.logTitle.textContent = `${A.deliveries}: ${e.url}`;
      const rows = page.deliveries.map((d) => h('tr', { 'data-testid': `admin-delivery-${d.id}` }, [
        cell(formatDate(d.at)), cell(`${d.event_type} ${d.event_id}`), cell(d.attempt),
        cell([d.outcome, d.status, d.error].filter((x) => x != null && x !== '').join(' · ')),
        h('td', {}, [button(A.redeliver, `admin-redeliver-${d.id}`, (ev) => act(ev.target, this.status, async () => {
          await api(`/api/admin/webhooks/${e.id}/redeliver`, { method: 'POST', body: { event_id: d.event_id } });
          this.status.say(fmt(A.redelivered, { id: d.event_id }));
        }))])
      ]));
      if (before) this.log.body.append(...rows);
      else this.log.body.replaceChildren(...rows);
      this.more.hidden = page.deliveries.length < 50 || !page.next_before;
    });
  }
}
