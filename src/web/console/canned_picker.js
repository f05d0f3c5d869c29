// Canned responses picked with "/" at the start of a chat's composer: a listbox of matches
// (arrow keys, Enter or Tab to take one, Escape to close), rendered for the chat by the node
// (placeholders filled) into the composer.

import { S, fmt, h } from './strings.js';
import { api } from './api.js';

export class CannedPicker {
  /** chatId; input: the composer's textarea; note(text): shows a line above the composer. */
  constructor(chatId, input, note) {
    this.chatId = chatId;
    this.input = input;
    this.note = note;
    this.items = [];
    this.index = -1;
    this.seq = 0;
    this.el = h('ul', { class: 'canned', role: 'listbox', id: `canned-${chatId}`, 'aria-label': S.cannedLabel, 'data-testid': 'canned-list', hidden: true });
    input.setAttribute('aria-controls', this.el.id);
    input.setAttribute('aria-autocomplete', 'list');
    input.setAttribute('aria-expanded', 'false');
  }

  /** The composer's text changed. */
  query() {
    const v = this.input.value;
    if (!/^\/\S*$/.test(v)) {
      this.close();
      return;
    }
    clearTimeout(this.timer);
    this.timer = setTimeout(async () => {
      const seq = ++this.seq;
      let items;
      try {
        items = await api(`/api/canned?q=${encodeURIComponent(v)}`);
      } catch (e) {
        this.note(fmt(S.cannedFailed, { message: e.message }));
        return;
      }
      if (seq !== this.seq || this.input.value !== v) return;
      this.show(Array.isArray(items) ? items : []);
    }, 120);
  }

  show(items) {
    this.items = items;
    this.index = items.length ? 0 : -1;
    this.el.textContent = '';
    if (!items.length) this.el.appendChild(h('li', { class: 'empty', text: S.cannedNone }));
    items.forEach((it, i) => {
      const li = h('li', { role: 'option', id: `canned-${this.chatId}-${i}`, 'data-testid': 'canned-option', 'data-id': String(it.id), 'aria-selected': 'false' }, [
        h('strong', { text: it.shortcut ? `/${String(it.shortcut).replace(/^\//, '')}` : '' }),
        h('span', { text: ` ${it.title || ''}` }),
        h('small', { text: it.text || '' })
      ]);
      li.addEventListener('mousedown', (e) => e.preventDefault());
      li.addEventListener('click', () => this.pick(i));
      this.el.appendChild(li);
    });
    this.el.hidden = false;
    this.input.setAttribute('aria-expanded', 'true');
    this.highlight();
  }

  highlight() {
    const opts = this.el.querySelectorAll('[role="option"]');
    opts.forEach((o, i) => o.setAttribute('aria-selected', i === this.index ? 'true' : 'false'));
    if (this.index >= 0 && opts[this.index]) {
      this.input.setAttribute('aria-activedescendant', opts[this.index].id);
      opts[this.index].scrollIntoView({ block: 'nearest' });
    } else this.input.removeAttribute('aria-activedescendant');
  }

  close() {
    clearTimeout(this.timer);
    this.seq++;
    this.el.hidden = true;
    this.el.textContent = '';
    this.items = [];
    this.input.setAttribute('aria-expanded', 'false');
    this.input.removeAttribute('aria-activedescendant');
  }

  /** Keys while the picker is open; true when handled. */
  keys(e) {
    if (this.el.hidden) return false;
    const n = this.items.length;
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      if (n) this.index = (this.index + (e.key === 'ArrowDown' ? 1 : n - 1)) % n;
      this.highlight();
      return true;
    }
    if ((e.key === 'Enter' || e.key === 'Tab') && n && this.index >= 0) {
      e.preventDefault();
      this.pick(this.index);
      return true;
    }
    if (e.key === 'Escape') {
      e.preventDefault();
      this.close();
      return true;
    }
    return false;
  }

  /** Renders the canned response for this chat (placeholders filled) into the composer. */
  async pick(i) {
    const it = this.items[i];
    this.close();
    if (!it) return;
    try {
      const res = await api(`/api/canned/${encodeURIComponent(it.id)}/render`, { method: 'POST', body: { chat_id: this.chatId } });
      this.input.value = (res && res.text) || '';
      this.note('');
    } catch (e) {
      // The shortcut typed is no message: clear it, keep the node's reason on screen.
      if (this.input.value.startsWith('/')) this.input.value = '';
      this.note(fmt(S.cannedFailed, { message: e.message }));
    }
    this.input.focus();
  }
}
