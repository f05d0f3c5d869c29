// The console's Admin section (shown to admins only; the node checks the role on every call):
// a tab per screen, each loaded when it is shown.

import { h } from '../strings.js';
import { A } from './strings.js';
import { AgentsScreen } from './agents.js';
import { QueuesScreen } from './queues.js';
import { AppearanceScreen } from './appearance.js';
import { WebhooksScreen } from './webhooks.js';
import { PrivacyScreen } from './privacy.js';

const TABS = [
  ['agents', A.tabAgents, AgentsScreen],
  ['queues', A.tabQueues, QueuesScreen],
  ['appearance', A.tabAppearance, AppearanceScreen],
  ['webhooks', A.tabWebhooks, WebhooksScreen],
  ['privacy', A.tabPrivacy, PrivacyScreen]
];

export class Admin {
  /** `root`: the section to fill; `navButton`: the console's button that shows it. */
  constructor(root, navButton) {
    navButton.textContent = A.navAdmin;
    this.screens = {};
    this.current = 'agents';
    this.buttons = TABS.map(([id, text]) => h('button', { type: 'button', role: 'tab', 'data-testid': `admin-tab-${id}`, text, onclick: () => this.show(id) }));
    this.body = h('div', { class: 'admin-body' });
    root.replaceChildren(h('nav', { class: 'admin-tabs', role: 'tablist', 'aria-label': A.navAdmin }, this.buttons), this.body);
  }

  /** Shows a screen (the last one when none is named) and reloads it. */
  show(id = this.current) {
    this.current = id;
    TABS.forEach(([tab], i) => this.buttons[i].setAttribute('aria-selected', tab === id ? 'true' : 'false'));
    if (!this.screens[id]) {
      const Screen = TABS.find(([tab]) => tab === id)[2];
      this.screens[id] = new Screen();
    }
    this.body.replaceChildren(this.screens[id].el);
    this.screens[id].load();
  }
}
