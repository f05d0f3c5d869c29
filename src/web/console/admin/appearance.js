// Admin screen: the widget's appearance (colour, corner, greeting, launcher text, offline
// text) with a live preview drawn from the form as it is typed. Saved in the store; every
// node serves it to widgets within its cache time. The preview shows texts as text.

import { api } from '../api.js';
import { h } from '../strings.js';
import { A } from './strings.js';
import { statusLine, act, field, options } from './common.js';

const DEFAULT_COLOR = '#1f5fbf';
const HEX = /^#[0-9a-fA-F]{6}$/;

/** Whether dark text reads better than white on `hex` (the widget's own rule). */
function light(hex) {
  const l = [1, 3, 5].map((i) => {
    const c = parseInt(hex.substr(i, 2), 16) / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * l[0] + 0.7152 * l[1] + 0.0722 * l[2] > 0.179;
}

export class AppearanceScreen {
  constructor() {
    this.status = statusLine('admin-appearance-status');
    const f = (this.f = {
      picker: field('admin-look-picker', A.color, 'color', { value: DEFAULT_COLOR }),
      color: field('admin-look-color', A.color, 'text', { maxlength: '7', placeholder: DEFAULT_COLOR, 'aria-label': A.color }),
      position: field('admin-look-position', A.position, 'select'),
      launcher: field('admin-look-launcher', A.launcherText, 'text', { maxlength: '40', placeholder: A.defaultLauncher }),
      greeting: field('admin-look-greeting', A.greeting, 'textarea', { rows: '3', maxlength: '300', placeholder: A.defaultGreeting }),
      offline: field('admin-look-offline', A.appearanceOffline, 'textarea', { rows: '3', maxlength: '500' })
    });
    options(f.position.input, [['right', A.right], ['left', A.left]], 'right');
    f.picker.input.addEventListener('input', () => {
      f.color.input.value = f.picker.input.value;
      this.preview();
    });
    for (const k of ['color', 'position', 'launcher', 'greeting', 'offline']) f[k].input.addEventListener('input', () => this.preview());
    this.submit = h('button', { type: 'submit', class: 'primary', 'data-testid': 'admin-look-save', text: A.save });
    // Hidden until the stored values are in, so nothing typed before is overwritten.
    const form = (this.form = h('form', { class: 'admin-form', 'data-testid': 'admin-look-form', novalidate: true, hidden: true }, [
      f.picker.label, h('div', { class: 'admin-inline' }, [f.picker.input, f.color.input]),
      f.position.label, f.position.input, f.launcher.label, f.launcher.input,
      f.greeting.label, f.greeting.input, f.offline.label, f.offline.input,
      h('div', { class: 'admin-buttons' }, [this.submit])
    ]));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      act(this.submit, this.status, () => this.save());
    });

    // The preview: a page corner with the launcher and the open pane.
    this.p = {
      head: h('div', { class: 'look-head', 'data-testid': 'admin-look-preview-head' }, [h('span', { text: A.defaultLauncher })]),
      greeting: h('p', { class: 'look-greeting', 'data-testid': 'admin-look-preview-greeting' }),
      offline: h('p', { class: 'look-offline muted', 'data-testid': 'admin-look-preview-offline' }),
      start: h('span', { class: 'look-primary' }),
      launcher: h('span', { class: 'look-launcher', 'data-testid': 'admin-look-preview-launcher' })
    };
    this.frame = h('div', { class: 'look-frame', 'data-testid': 'admin-look-preview', 'aria-label': A.preview, role: 'img' }, [
      h('div', { class: 'look-pane' }, [this.p.head, h('div', { class: 'look-body' }, [this.p.greeting, this.p.start, this.p.offline])]),
      this.p.launcher
    ]);
    this.p.start.textContent = 'Start chat';
    this.el = h('div', { class: 'admin-screen', 'data-testid': 'admin-appearance-screen' }, [
      h('div', { class: 'admin-main' }, [h('h2', { text: A.appearanceTitle }), this.status.el, form]),
      h('div', { class: 'admin-side' }, [h('h3', { text: A.preview }), this.frame, h('p', { class: 'muted', text: A.previewHint })])
    ]);
  }

  async load() {
    await act(null, this.status, async () => {
      const a = await api('/api/admin/appearance');
      const f = this.f;
      f.color.input.value = a.color;
      f.picker.input.value = a.color || DEFAULT_COLOR;
      f.position.input.value = a.position === 'left' ? 'left' : 'right';
      f.launcher.input.value = a.launcher_text;
      f.greeting.input.value = a.greeting;
      f.offline.input.value = a.offline_text;
      this.preview();
      this.form.hidden = false;
    });
  }

  /** Draws the form's values; a colour that is not #rrggbb shows the default and is flagged. */
  preview() {
    const f = this.f;
    const typed = f.color.input.value.trim();
    const ok = !typed || HEX.test(typed);
    f.color.input.setAttribute('aria-invalid', ok ? 'false' : 'true');
    if (ok && typed) f.picker.input.value = typed.toLowerCase();
    const color = ok && typed ? typed : DEFAULT_COLOR;
    const fg = light(color) ? '#1d1d1f' : '#ffffff';
    for (const el of [this.p.head, this.p.launcher, this.p.start]) {
      el.style.setProperty('background', color);
      el.style.setProperty('color', fg);
    }
    this.frame.classList.toggle('look-left', f.position.input.value === 'left');
    this.p.launcher.textContent = f.launcher.input.value.trim() || A.defaultLauncher;
    this.p.greeting.textContent = f.greeting.input.value.trim() || A.defaultGreeting;
    this.p.offline.textContent = f.offline.input.value.trim();
    this.p.offline.hidden = !this.p.offline.textContent;
  }

  async save() {
    const f = this.f;
    await api('/api/admin/appearance', {
      method: 'PUT',
      body: {
        color: f.color.input.value.trim(),
        position: f.position.input.value,
        launcher_text: f.launcher.input.value,
        greeting: f.greeting.input.value,
        offline_text: f.offline.input.value
      }
    });
    await this.load();
    this.status.say(A.saved);
  }
}
