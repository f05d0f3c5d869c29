// Admin screen: agents. List; create; edit name, role, queues and max chats; disable and
// enable; reset a password; end every session; delete. The node applies each change on every
// node at once (sockets reconnect with the new settings, or are closed).

import { api } from '../api.js';
import { h, fmt } from '../strings.js';
import { A } from './strings.js';
import { statusLine, act, field, options, table, cell, button } from './common.js';

const ROLES = ['agent', 'admin'];

export class AgentsScreen {
  constructor() {
    this.status = statusLine('admin-agents-status');
    this.list = table('admin-agents', [A.colUsername, A.colName, A.colRole, A.colQueues, A.colMaxChats, A.colState, '']);
    this.editing = null; // the agent being edited, or null for a new one
    this.queues = [];
    const f = (this.f = {
      username: field('admin-agent-username', A.colUsername, 'text', { maxlength: '64', autocomplete: 'off' }),
      name: field('admin-agent-name', A.colName, 'text', { maxlength: '100' }),
      password: field('admin-agent-password', A.password, 'password', { autocomplete: 'new-password' }),
      role: field('admin-agent-role', A.colRole, 'select'),
      max: field('admin-agent-max', A.colMaxChats, 'number', { min: '1', max: '100', value: '3' })
    });
    this.queueBox = h('fieldset', { class: 'admin-checks', 'data-testid': 'admin-agent-queues' }, [h('legend', { text: A.colQueues })]);
    this.title = h('h3', { 'data-testid': 'admin-agent-form-title', text: A.newAgent });
    this.submit = h('button', { type: 'submit', class: 'primary', 'data-testid': 'admin-agent-save', text: A.save });
    this.form = h('form', { class: 'admin-form', 'data-testid': 'admin-agent-form', novalidate: true }, [
      this.title,
      f.username.label, f.username.input, f.name.label, f.name.input, f.password.label, f.password.input,
      f.role.label, f.role.input, f.max.label, f.max.input, this.queueBox,
      h('div', { class: 'admin-buttons' }, [this.submit, button(A.newAgent, 'admin-agent-new', () => this.edit(null))])
    ]);
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      act(this.submit, this.status, () => this.save());
    });
    this.el = h('div', { class: 'admin-screen', 'data-testid': 'admin-agents-screen' }, [
      h('div', { class: 'admin-main' }, [h('h2', { text: A.agentsTitle }), this.status.el, this.list.table]),
      h('div', { class: 'admin-side' }, [this.form])
    ]);
  }

  async load() {
    await act(null, this.status, async () => {
      const [agents, queues] = await Promise.all([api('/api/admin/agents'), api('/api/admin/queues')]);
      this.queues = queues.map((q) => q.name);
      this.render(agents);
      this.edit(this.editing && agents.find((a) => a.id === this.editing.id));
    });
  }

  render(agents) {
    this.list.body.replaceChildren(...agents.map((a) => {
      const who = a.display_name || a.username;
      const run = (b, fn) => act(b, this.status, async () => {
        await fn();
        await this.load();
      });
      const actions = h('td', { class: 'admin-actions' }, [
        button(A.edit, `admin-agent-edit-${a.username}`, () => this.edit(a)),
        button(a.disabled ? A.enable : A.disable, `admin-agent-toggle-${a.username}`, (e) =>
          run(e.target, () => api(`/api/admin/agents/${a.id}/${a.disabled ? 'enable' : 'disable'}`, { method: 'POST' }))),
        button(A.resetPassword, `admin-agent-password-${a.username}`, (e) => {
          const password = window.prompt(fmt(A.newPasswordFor, { name: who }));
          if (password) run(e.target, async () => {
            await api(`/api/admin/agents/${a.id}/password`, { method: 'POST', body: { password } });
            this.status.say(fmt(A.passwordSet, { name: who }));
          });
        }),
        button(A.forceLogout, `admin-agent-logout-${a.username}`, (e) => {
          if (window.confirm(fmt(A.confirmLogout, { name: who }))) run(e.target, async () => {
            await api(`/api/admin/agents/${a.id}/logout`, { method: 'POST' });
            this.status.say(fmt(A.loggedOut, { name: who }));
          });
        }),
        button(A.del, `admin-agent-delete-${a.username}`, (e) => {
          if (window.confirm(fmt(A.confirmDeleteAgent, { name: who }))) run(e.target, () => api(`/api/admin/agents/${a.id}`, { method: 'DELETE' }));
        }, 'danger')
      ]);
      return h('tr', { 'data-testid': `admin-agent-${a.username}`, class: a.disabled ? 'muted' : null }, [
        cell(a.username), cell(a.display_name), cell(a.role), cell(a.queues.join(', ')),
        cell(a.max_chats, { 'data-testid': `admin-agent-max-${a.username}` }), cell(a.disabled ? A.disabled : A.enabled), actions
      ]);
    }));
  }

  /** Fills the form with `agent`, or empties it for a new one. */
  edit(agent) {
    this.editing = agent || null;
    const f = this.f;
    this.title.textContent = agent ? fmt(A.editAgent, { name: agent.username }) : A.newAgent;
    f.username.input.value = agent ? agent.username : '';
    f.username.input.disabled = !!agent;
    f.password.label.hidden = f.password.input.hidden = !!agent;
    f.password.input.value = '';
    f.name.input.value = agent ? agent.display_name : '';
    const roles = agent && !ROLES.includes(agent.role) ? [...ROLES, agent.role] : ROLES;
    options(f.role.input, roles.map((r) => [r, r]), agent ? agent.role : 'agent');
    f.max.input.value = agent ? agent.max_chats : 3;
    const mine = new Set(agent ? agent.queues : this.queues.slice(0, 1));
    this.queueBox.replaceChildren(h('legend', { text: A.colQueues }), ...this.queues.map((q) =>
      h('label', {}, [h('input', { type: 'checkbox', value: q, checked: mine.has(q), 'data-testid': `admin-agent-queue-${q}` }), document.createTextNode(` ${q}`)])));
  }

  async save() {
    const f = this.f;
    const body = {
      display_name: f.name.input.value.trim() || undefined,
      role: f.role.input.value,
      max_chats: Number(f.max.input.value),
      queues: [...this.queueBox.querySelectorAll('input:checked')].map((i) => i.value)
    };
    if (this.editing) {
      await api(`/api/admin/agents/${this.editing.id}`, { method: 'PATCH', body });
    } else {
      body.username = f.username.input.value.trim();
      body.password = f.password.input.value;
      this.editing = await api('/api/admin/agents', { method: 'POST', body });
    }
    await this.load();
    this.status.say(A.saved);
  }
}
