// The panel beside a chat: who the visitor is (name, e-mail marked verified or not), the page
// they are on now (read again every few seconds while the chat is on screen), their pages of
// this visit, country, IP, browser and time on site, the note of the transfer that brought the
// chat, and the contact's earlier interactions, each opened with one click.

import { S, fmt, h, formatDate } from './strings.js';
import { api } from './api.js';
import { duration, urlNode, pageList, browserName } from './visitor_facts.js';

const REFRESH_MS = 5000;

export class VisitorPanel {
  /** chatId; onData(panel): the header uses it; openInteraction(id): shows it in history. */
  constructor(chatId, { onData, openInteraction }) {
    this.chatId = chatId;
    this.onData = onData;
    this.openInteraction = openInteraction;
    this.data = null;
    this.el = h('aside', { class: 'chat-panel', 'aria-label': S.panelTitle, 'data-testid': 'visitor-panel' });
    this.el.appendChild(h('p', { class: 'muted', text: S.panelLoading }));
  }

  async load() {
    try {
      this.data = await api(`/api/chats/${encodeURIComponent(this.chatId)}/visitor`);
    } catch (e) {
      // Gone or no longer ours: the chat's own frames say what happened; keep the last view.
      if (!this.data) this.el.replaceChildren(h('p', { class: 'muted', text: fmt(S.loadFailed, { message: e.message }) }));
      return;
    }
    this.render();
    if (this.onData) this.onData(this.data);
  }

  /** Reads the panel now and again every few seconds (the chat is on screen). */
  watch() {
    this.unwatch();
    this.load();
    // Only while someone can look at it: a console left in a background tab costs nothing.
    this.timer = setInterval(() => {
      if (document.visibilityState === 'visible') this.load();
    }, REFRESH_MS);
  }

  unwatch() {
    clearInterval(this.timer);
    this.timer = null;
  }

  row(label, value, testid) {
    return h('div', { class: 'panel-row' }, [h('dt', { text: label }), h('dd', { 'data-testid': testid }, [value instanceof Node ? value : document.createTextNode(value || '—')])]);
  }

  render() {
    const d = this.data;
    const v = d.visitor;
    const out = [h('h3', { 'data-testid': 'panel-name', text: d.name || d.email || S.anonymous })];
    if (d.transfer_note) {
      out.push(h('div', { class: 'panel-note', 'data-testid': 'panel-transfer-note' }, [h('strong', { text: fmt(S.noteFrom, { name: d.transferred_by || '' }) }), h('p', { text: d.transfer_note })]));
    }
    const email = h('span', { 'data-verified': d.email_verified ? 'true' : 'false' }, [document.createTextNode(d.email || '—')]);
    if (d.email) email.appendChild(h('span', { class: d.email_verified ? 'tag' : 'tag unverified', text: d.email_verified ? S.verified : S.unverified }));
    const facts = [this.row(S.colEmail, email, 'panel-email')];
    if (v) {
      facts.push(this.row(S.colPage, urlNode(v.url, v.title || v.url), 'panel-page'));
      facts.push(this.row(S.colCountry, v.country, 'panel-country'));
      facts.push(this.row(S.colIp, v.ip, 'panel-ip'));
      facts.push(this.row(S.colBrowser, browserName(d.browser) || d.browser, 'panel-browser'));
      facts.push(this.row(S.colTime, duration(Date.now() - (v.started_at || Date.now())), 'panel-time'));
    } else {
      facts.push(this.row(S.colPage, S.visitorLeft, 'panel-page'));
    }
    out.push(h('dl', { class: 'panel-facts' }, facts));
    if (v) {
      out.push(h('h4', { text: fmt(S.pagesSeen, { n: v.page_count || 0 }) }));
      out.push(pageList(d.pages));
    }
    out.push(h('h4', { text: S.earlier }));
    const list = h('ul', { class: 'panel-interactions', 'data-testid': 'panel-interactions' });
    for (const it of d.interactions || []) {
      list.appendChild(h('li', {}, [h('button', { type: 'button', class: 'link', 'data-testid': 'panel-interaction', 'data-id': String(it.id), text: fmt(S.interaction, { id: it.id, subject: it.subject || '' }), onclick: () => this.openInteraction(it.id) }), h('small', { text: ` ${formatDate(it.created_at)}` })]));
    }
    if (!list.firstChild) list.appendChild(h('li', { class: 'muted', text: S.noInteractions }));
    out.push(list);
    this.el.replaceChildren(...out);
  }
}
