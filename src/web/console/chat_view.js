// One chat on the agent's screen: its tab (visitor, unread badge, last message, how long the
// visitor has waited for an answer) and its pane (header, transcript, tools, composer, wrap-up,
// visitor panel). What it shows comes from the chat's entries and the visitor panel's data;
// `Chats` (chats.js) routes the server's frames to it.

import { S, fmt, h, twoStep } from './strings.js';
import { fileHref, openFile } from './api.js';
import { CannedPicker } from './canned_picker.js';
import { TransferPicker } from './transfer_picker.js';
import { Wrapup } from './wrapup.js';
import { VisitorPanel } from './visitor_panel.js';
import { upload, bindUploads, fileThumb, filePreview } from './uploads.js';
import { shortPlace } from './visitor_facts.js';

const TYPING_EVERY_MS = 3000;
const TYPING_IDLE_MS = 4000;
const TYPING_SHOW_MS = 5000;
const PREVIEW_CHARS = 80;

export class ChatView {
  /**
   * id, state, info (offer or visitor-list details); me: this agent's id; conn, outbox;
   * ui: { report, select(id), tabKeys(e, id), transfer(view, frame), end(view), openInteraction(id) }
   */
  constructor({ id, state, info, me, conn, outbox, ui }) {
    Object.assign(this, { id, state: state || 'joining', info: info || {}, me: String(me), conn, outbox, ui });
    this.live = false;
    this.resuming = false;
    this.unread = 0;
    this.panelData = null;
    this.visitorName = '';
    this.sent = {};
    this.typingAt = 0;
    this.waitingSince = 0;
    this.build();
  }

  build() {
    const id = this.id;
    this.tabLabel = h('span', { class: 'tab-label' });
    this.badge = h('span', { class: 'badge', 'data-testid': 'chat-unread', hidden: true });
    this.preview = h('span', { class: 'tab-preview', 'data-testid': 'chat-preview' });
    this.waitEl = h('span', { class: 'tab-wait', 'data-testid': 'chat-waiting', hidden: true });
    this.tab = h('button', { type: 'button', role: 'tab', class: 'tab', id: `tab-${id}`, 'aria-controls': `pane-${id}`, 'aria-selected': 'false', tabindex: '-1', 'data-testid': 'chat-tab', 'data-chat-id': id }, [
      h('span', { class: 'tab-top' }, [this.tabLabel, this.badge]),
      this.preview,
      this.waitEl
    ]);
    this.tab.addEventListener('click', () => this.ui.select(id));
    this.tab.addEventListener('keydown', (e) => this.ui.tabKeys(e, id));

    this.title = h('h2', { class: 'pane-title', 'data-testid': 'chat-title' });
    this.sub = h('p', { class: 'pane-sub', 'data-testid': 'chat-sub' });
    this.stateEl = h('span', { class: 'pane-state', 'data-testid': 'chat-state' });
    this.endBtn = twoStep(h('button', { type: 'button', class: 'danger', 'data-testid': 'chat-end', text: S.end }), S.endConfirm, () => this.ui.end(this));
    this.picker = new TransferPicker(this.me, (frame) => this.ui.transfer(this, frame));
    this.picker.onCancel = () => this.toggle(this.picker.form, this.transferBtn, false);
    this.transferBtn = h('button', { type: 'button', 'data-testid': 'chat-transfer', 'aria-expanded': 'false', text: S.transfer, onclick: () => this.toggleTransfer() });
    this.noteEl = h('p', { class: 'pane-note', role: 'status', 'data-testid': 'chat-note', hidden: true });
    this.handover = h('div', { class: 'pane-handover', 'data-testid': 'chat-handover', hidden: true });
    this.typing = h('p', { class: 'typing', 'aria-live': 'polite', 'data-testid': 'chat-typing', hidden: true });
    this.buildTools();
    this.list = h('ol', { class: 'log', role: 'log', 'aria-live': 'polite', 'aria-label': S.messages, 'data-testid': 'message-list' });
    this.scroller = h('div', { class: 'log-wrap' }, [this.list]);
    this.buildComposer();
    this.wrapup = new Wrapup(id, (f) => this.conn.send(f));
    this.panel = new VisitorPanel(id, { onData: (d) => this.onPanel(d), openInteraction: (iid) => this.ui.openInteraction(iid) });
    this.pane = h('section', { class: 'pane', role: 'tabpanel', id: `pane-${id}`, 'aria-labelledby': `tab-${id}`, 'data-testid': 'chat-pane', 'data-chat-id': id, hidden: true }, [
      h('header', { class: 'pane-head' }, [h('div', {}, [this.title, this.sub]), this.stateEl, this.transferBtn, this.endBtn]),
      this.noteEl,
      this.handover,
      h('div', { class: 'pane-body' }, [
        h('div', { class: 'pane-main' }, [this.scroller, this.wrapup.el, this.typing, this.tools, this.compose]),
        this.panel.el
      ])
    ]);
    this.transcript = new SbTranscript.Transcript(this.list, {
      me: 'agent',
      // Several agents may write into a chat (transfers): only this agent's entries are "You".
      isMine: (e) => (e.author_id ? String(e.author_id) === this.me : true),
      prefix: 'tx-',
      strings: S,
      fileHref,
      fileOpen: (d) => openFile(d, this.ui.report),
      fileThumb,
      filePreview
    });
    bindUploads(this.pane, this.input, (f) => upload(this.id, f, (t) => this.note(t)));
    this.fillHeader();
    this.setState(this.state);
  }

  /** The row above the composer: attach, link (send / push page), and the transfer form. */
  buildTools() {
    this.file = h('input', { type: 'file', hidden: true, tabindex: '-1', 'data-testid': 'chat-file' });
    this.file.addEventListener('change', () => {
      const f = this.file.files && this.file.files[0];
      this.file.value = '';
      if (f) upload(this.id, f, (t) => this.note(t));
    });
    this.linkBtn = h('button', { type: 'button', 'data-testid': 'chat-link', 'aria-expanded': 'false', text: S.linkButton, onclick: () => this.toggle(this.linkForm, this.linkBtn) });
    const attach = h('button', { type: 'button', 'data-testid': 'chat-attach', text: S.attach, onclick: () => this.file.click() });
    this.linkUrl = h('input', { type: 'url', placeholder: 'https://', 'aria-label': S.linkUrl, 'data-testid': 'chat-link-url', maxlength: '2000' });
    this.linkTitle = h('input', { type: 'text', placeholder: S.linkTitle, 'aria-label': S.linkTitle, 'data-testid': 'chat-link-title', maxlength: '200' });
    this.linkForm = h('form', { class: 'tool-form', 'data-testid': 'chat-link-form', hidden: true }, [
      this.linkUrl,
      this.linkTitle,
      h('button', { type: 'submit', class: 'primary', 'data-testid': 'chat-link-send', text: S.sendLink }),
      h('button', { type: 'button', 'data-testid': 'chat-push-page', text: S.pushPage, onclick: () => this.sendUrl('push_page') })
    ]);
    this.linkForm.addEventListener('submit', (e) => {
      e.preventDefault();
      this.sendUrl('send_link');
    });
    this.tools = h('div', { class: 'tools' }, [h('div', { class: 'tool-buttons' }, [attach, this.file, this.linkBtn]), this.linkForm, this.picker.form]);
  }

  buildComposer() {
    this.input = h('textarea', { class: 'input', rows: '2', maxlength: '4000', placeholder: S.input, 'aria-label': S.input, 'data-testid': 'chat-input' });
    this.sendBtn = h('button', { type: 'submit', class: 'primary', 'data-testid': 'chat-send', text: S.send });
    this.canned = new CannedPicker(this.id, this.input, (t) => this.note(t));
    this.compose = h('form', { class: 'compose' }, [h('div', { class: 'compose-input' }, [this.input, this.canned.el]), this.sendBtn]);
    this.input.addEventListener('input', () => {
      this.canned.query();
      this.setTyping(!!this.input.value.trim() && !this.input.value.startsWith('/'));
    });
    this.compose.addEventListener('submit', (e) => {
      e.preventDefault();
      this.send();
    });
    this.input.addEventListener('keydown', (e) => {
      if (this.canned.keys(e)) return;
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        this.send();
      }
    });
  }

  toggle(form, button, show = form.hidden) {
    form.hidden = !show;
    button.setAttribute('aria-expanded', show ? 'true' : 'false');
    if (show) {
      const first = form.querySelector('input, select');
      if (first) first.focus();
    }
  }

  toggleTransfer() {
    const show = this.picker.form.hidden;
    this.toggle(this.picker.form, this.transferBtn, show);
    if (show) this.picker.load();
  }

  note(text) {
    this.noteEl.textContent = text || '';
    this.noteEl.hidden = !text;
  }

  /** "Transferred to you by Ann" and the note she left; gone when the chat ends. */
  handedOver(from, noteText) {
    this.handover.replaceChildren(h('strong', { text: fmt(S.assigned, { name: from || '' }) }));
    if (noteText) this.handover.appendChild(h('p', { 'data-testid': 'chat-handover-note', text: noteText }));
    this.handover.hidden = this.state === 'ended';
  }

  /** Who the visitor is: a name, else an e-mail, else "Visitor" and where they are. */
  displayName() {
    const info = this.info || {};
    const p = this.panelData || {};
    const named = info.name || p.name || this.visitorName;
    if (named) return named;
    if (info.email || p.email) return info.email || p.email;
    const url = (p.visitor && p.visitor.url) || info.url || '';
    const place = shortPlace(url);
    return place ? fmt(S.visitorAt, { place }) : S.anonymous;
  }

  fillHeader() {
    const info = this.info || {};
    const p = this.panelData || {};
    const name = this.displayName();
    this.tabLabel.textContent = name;
    this.title.textContent = name;
    const bits = [];
    const email = info.email || p.email;
    const verified = info.email ? !!info.email_verified : !!p.email_verified;
    if (email && email !== name) bits.push(verified ? email : fmt(S.unverifiedEmail, { email }));
    const queue = info.queue || p.queue;
    if (queue) bits.push(fmt(S.queue, { queue }));
    this.sub.textContent = bits.join(' · ');
  }

  onPanel(d) {
    this.panelData = d;
    this.fillHeader();
    // After a reload `chat_assigned` is not sent again: the panel still knows who handed over.
    if (d.transferred_by && !this.handover.firstChild && this.state !== 'ended') this.handedOver(d.transferred_by, d.transfer_note);
  }

  setState(state) {
    this.state = state;
    this.pane.setAttribute('data-state', state);
    this.tab.setAttribute('data-state', state);
    this.stateEl.textContent = state === 'ended' ? S.ended : state === 'active' ? S.active : S.joining;
    this.compose.hidden = state === 'ended';
    this.tools.hidden = state === 'ended';
    this.transferBtn.hidden = state !== 'active';
    this.endBtn.hidden = state === 'ended';
    this.wrapup.el.hidden = state !== 'ended';
    if (state === 'ended') {
      this.handover.hidden = true;
      this.waitingSince = 0;
      this.tick();
    }
  }

  scroll() {
    this.scroller.scrollTop = this.scroller.scrollHeight;
  }

  atBottom() {
    return this.scroller.scrollHeight - this.scroller.scrollTop - this.scroller.clientHeight < 80;
  }

  /** A delivered entry; false when it was shown already. */
  add(e) {
    if (!this.transcript.add(e)) return false;
    if (e.author === 'visitor' && e.name && e.name !== S.anonymous && !this.visitorName) {
      this.visitorName = e.name;
      this.fillHeader();
    }
    if (e.kind === 'message' && this.transcript.lastSeq() === e.seq) {
      const who = e.author === 'agent' && this.transcript.mine(e) ? S.you : e.name || '';
      const text = `${who ? `${who}: ` : ''}${String(e.text || '').replace(/\s+/g, ' ')}`;
      this.preview.textContent = text.length > PREVIEW_CHARS ? `${text.slice(0, PREVIEW_CHARS - 1)}…` : text;
      this.waitingSince = e.author === 'visitor' && this.state !== 'ended' ? e.at || Date.now() : 0;
      this.tick();
    }
    return true;
  }

  /** How long the visitor's last message has waited for an answer. */
  tick() {
    if (!this.waitingSince) {
      this.waitEl.hidden = true;
      this.tab.removeAttribute('data-waiting');
      return;
    }
    const s = Math.max(0, Math.floor((Date.now() - this.waitingSince) / 1000));
    this.waitEl.textContent = s < 60 ? fmt(S.waitedSeconds, { n: s }) : fmt(S.waitedMinutes, { n: Math.floor(s / 60) });
    this.waitEl.hidden = false;
    this.tab.setAttribute('data-waiting', s >= 60 ? 'long' : 'short');
  }

  setUnread(n) {
    this.unread = n;
    this.badge.textContent = n ? String(n) : '';
    this.badge.hidden = !n;
  }

  showTyping(on) {
    clearTimeout(this.theirTypingTimer);
    this.typing.textContent = on ? S.typing : '';
    this.typing.hidden = !on;
    if (on) this.theirTypingTimer = setTimeout(() => this.showTyping(false), TYPING_SHOW_MS);
  }

  send() {
    const text = this.input.value.trim();
    if (!text || this.state === 'ended') return;
    const item = this.outbox.add(this.id, text);
    this.transcript.pending(item);
    this.input.value = '';
    this.canned.close();
    this.setTyping(false);
    this.scroll();
    if (this.live) this.conn.send({ type: 'send', chat_id: this.id, client_msg_id: item.client_msg_id, text });
  }

  /** A link entry (`send_link`) or a page opened in the visitor's browser (`push_page`). */
  sendUrl(kind) {
    const url = SbTranscript.safeHref(this.linkUrl.value.trim());
    if (!url) {
      this.note(S.badUrl);
      this.linkUrl.focus();
      return;
    }
    if (this.state === 'ended') return;
    this.note('');
    const extra = { kind, url };
    const title = this.linkTitle.value.trim();
    if (kind === 'send_link' && title) extra.title = title;
    const item = this.outbox.add(this.id, url, extra);
    this.transcript.pending(item);
    this.linkUrl.value = '';
    this.linkTitle.value = '';
    this.toggle(this.linkForm, this.linkBtn, false);
    this.scroll();
    if (this.live) this.conn.send(SbSocket.frameOf(item));
  }

  /** Typing: true at most every 3 s while there is text, false after 4 s idle or on send. */
  setTyping(on) {
    if (!this.live || this.state !== 'active') return;
    clearTimeout(this.typingTimer);
    if (on) {
      if (Date.now() - this.typingAt > TYPING_EVERY_MS) {
        this.typingAt = Date.now();
        this.conn.send({ type: 'typing', chat_id: this.id, typing: true });
      }
      this.typingTimer = setTimeout(() => this.setTyping(false), TYPING_IDLE_MS);
    } else if (this.typingAt) {
      this.typingAt = 0;
      this.conn.send({ type: 'typing', chat_id: this.id, typing: false });
    }
  }

  destroy() {
    clearTimeout(this.typingTimer);
    clearTimeout(this.theirTypingTimer);
    clearTimeout(this.transferTimer);
    this.panel.unwatch();
    this.tab.remove();
    this.pane.remove();
  }
}
