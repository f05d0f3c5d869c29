// What the admin screens share: a status line that says "Saved" or why not, small table and
// field builders over the console's `h`, and the wrapper every button action goes through.

import { h, fmt } from '../strings.js';
import { A } from './strings.js';

/** A status line (role=status); `say(text)` or `fail(error)`. */
export function statusLine(testid) {
  const el = h('p', { class: 'muted admin-status', role: 'status', 'data-testid': testid });
  return {
    el,
    say(text) {
      el.classList.remove('error');
      el.textContent = text;
    },
    fail(e) {
      el.classList.add('error');
      el.textContent = fmt(A.failed, { message: (e && e.message) || String(e) });
    }
  };
}

/** Runs `fn` with `button` disabled; errors go to `status`. */
export async function act(button, status, fn) {
  if (button) button.disabled = true;
  try {
    await fn();
  } catch (e) {
    status.fail(e);
  } finally {
    if (button) button.disabled = false;
  }
}

/** A labelled field: `{ label, input }`; `kind` is an input type, 'textarea' or 'select'. */
export function field(id, text, kind = 'text', attrs = {}) {
  const tag = kind === 'textarea' || kind === 'select' ? kind : 'input';
  const input = h(tag, { id, 'data-testid': id, type: tag === 'input' ? kind : null, ...attrs });
  return { label: h('label', { for: id, text }), input };
}

export function options(select, list, selected) {
  select.replaceChildren(...list.map(([value, text]) => h('option', { value, text, selected: value === selected })));
}

/** A table with a header row; returns `{ table, body }`. */
export function table(testid, headers) {
  const body = h('tbody', { 'data-testid': `${testid}-rows` });
  const head = h('thead', {}, [h('tr', {}, headers.map((t) => h('th', { scope: 'col', text: t })))]);
  return { table: h('table', { class: 'admin-table', 'data-testid': testid }, [head, body]), body };
}

export function cell(text, attrs = {}) {
  return h('td', { text: text == null ? '' : String(text), ...attrs });
}

export function button(text, testid, onclick, cls) {
  return h('button', { type: 'button', text, 'data-testid': testid, onclick, class: cls || null });
}
