// The site-visitors view: the live list from `watch_visitors` (read in pages, then changes),
// one visitor's page history on demand (`visitor_history`), and proactive invitations
// (`invite`, answered by `invitation_result`).
//
// The table is virtual: only the rows in view (and a few around them) are in the DOM, between
// two spacer rows that keep the scroll height of the whole list, and repaints are folded into
// one per animation frame. Ten thousand visitors cost a sort when the list changes and a few
// dozen rows per frame, never ten thousand DOM rows.
//
// The list is watched with `rows: "in_view"`: every visitor comes as a compact row (what the
// list sorts, filters and counts by), and whole records only for the rows in the DOM and the
// selected visitor, which `view_visitors` names after each paint that changed them. A busy
// site's page views then cost the console what it shows, not the whole site.

import { S, fmt, h } from './strings.js';
import { duration, urlNode, pageList } from './visitor_facts.js';

/** Height of one row in px; console.css gives every visitor row exactly this height. */
const ROW_PX = 36;
/** Rows rendered above and below the visible ones, so a scroll shows no gap. */
const OVERSCAN = 8;
/** After `visitors_stale` (the list changed faster than the node sends), read it again this late. */
const STALE_REFETCH_MS = 30000;
/** Quiet time after a paint before the rows in view are named to the node (`view_visitors`). */
const VIEW_DEBOUNCE_MS = 200;
/** Visitors one `view_visitors` names at most until the node says (`visitors_snapshot.view_max`,
 * its `abuse.visitors_in_view`); this is that setting's default. */
const VIEW_MAX = 200;

/** Whether `v` is at least as recent as `old` (changes of different nodes may cross). */
function newer(v, old) {
  return !old || (v.last_seen || 0) >= (old.last_seen || 0);
}

/** A whole record (compact rows carry no `url`). */
function whole(v) {
  return !!v && 'url' in v;
}

/** What the list keeps of `v` given the record it holds: the newer one; a compact row keeps
 * the whole record's other fields until the next whole record replaces them. */
function merged(v, old) {
  if (!newer(v, old)) return old;
  return whole(v) || !whole(old) ? v : Object.assign({}, old, v);
}

/** Makes `items` the children of `parent`, moving only what has to move: a row that stays in
 * view stays in the DOM untouched, and so does the focus in it. */
function place(parent, items) {
  const keep = new Set(items);
  for (const c of [...parent.children]) if (!keep.has(c)) c.remove();
  let at = parent.firstChild;
  for (const el of items) {
    if (at === el) at = at.nextSibling;
    else parent.insertBefore(el, at);
  }
}

export class Visitors {
  /** root: the view; send(frame): false when not connected. */
  constructor({ root, send }) {
    this.root = root;
    this.send = send;
    this.scroller = root.querySelector('[data-testid="visitors-scroll"]');
    this.rows = root.querySelector('[data-testid="visitors-rows"]');
    this.empty = root.querySelector('[data-testid="no-visitors"]');
    this.count = root.querySelector('[data-testid="visitors-count"]');
    this.result = root.querySelector('[data-testid="invite-result"]');
    this.detail = root.querySelector('[data-testid="visitor-detail"]');
    this.stale = root.querySelector('[data-testid="visitors-stale"]');
    this.newOnly = root.querySelector('[data-testid="visitors-new-only"]');
    this.newOnly.addEventListener('change', () => this.changed());
    this.scroller.addEventListener('scroll', () => this.schedule(), { passive: true });
    window.addEventListener('resize', () => this.schedule());
    this.stale.querySelector('button').addEventListener('click', () => this.watch());
    /** visitor id -> record, as shown. */
    this.visitors = new Map();
    /** While the pages of a fresh read arrive: the list being built (changes go to both). */
    this.loading = null;
    /** The shown list's visitor ids, filtered and sorted; null when it must be worked out again. */
    this.order = null;
    this.selected = null;
    this.viewMax = VIEW_MAX;
    /** Rendered rows above the screen (the overscan, fewer at the top of the list). */
    this.aboveScreen = 0;
    /** Page history of the selected visitor (`visitor_history`), with its page count. */
    this.history = null;
    this.watching = false;
    this.ticker = null;
    this.frame = 0;
    this.refetch = null;
    /** The ids last named with `view_visitors` (joined), and the timer that names them. */
    this.viewKey = '';
    this.viewTimer = null;
    /** Rows in the DOM by visitor id, with the record and selection they show: a repaint
     * keeps an unchanged row's element (and the focus in it). */
    this.rendered = new Map();
    // The spacers stand for the rows above and below the rendered ones. Their height is set
    // through the CSSOM: the console's CSP allows no style attributes.
    this.top = h('tr', { class: 'spacer', 'aria-hidden': 'true' });
    this.bottom = h('tr', { class: 'spacer', 'aria-hidden': 'true' });
  }

  /** Shown: start watching (again after a reconnect, or to read a stale list again). */
  watch() {
    this.watching = true;
    clearTimeout(this.refetch);
    this.refetch = null;
    this.loading = new Map();
    // A (re)watch starts with an empty view on the node: name the rows again after the read.
    this.viewKey = '';
    this.send({ type: 'watch_visitors', rows: 'in_view' });
    clearInterval(this.ticker);
    this.ticker = setInterval(() => this.tick(), 1000);
  }

  unwatch() {
    if (!this.watching) return;
    this.watching = false;
    clearInterval(this.ticker);
    clearTimeout(this.refetch);
    clearTimeout(this.viewTimer);
    this.refetch = null;
    this.loading = null;
    this.send({ type: 'unwatch_visitors' });
  }

  /** One page of the list; asks for the next one until the last, then shows the fresh list. */
  onSnapshot(f) {
    if (f.view_max > 0) this.viewMax = f.view_max;
    if (!this.loading) return;
    if (!f.after) this.loading = new Map();
    for (const v of f.visitors || []) {
      if (v && v.visitor_id) this.loading.set(v.visitor_id, merged(v, this.loading.get(v.visitor_id) || this.visitors.get(v.visitor_id)));
    }
    if (f.next) {
      this.send({ type: 'list_visitors', after: f.next });
      return;
    }
    this.visitors = this.loading;
    this.loading = null;
    this.stale.hidden = true;
    this.changed();
  }

  /** Each change carries the visitor's row: the whole record, or a compact one for an
   * arrival out of view (none for `leave`). Also the answer to `view_visitors`. */
  onChanged(f) {
    const before = this.visitors.get(this.selected);
    // Whether the order may have changed: a visitor came or went, or what the order and the
    // filter read changed. Records updated in place (page views, the answer to a view) only
    // repaint the rows in view; ten thousand are not sorted again for them.
    let reorder = false;
    for (const ch of f.changes || []) {
      if (!ch || !ch.visitor_id) continue;
      const old = this.visitors.get(ch.visitor_id);
      for (const list of [this.visitors, this.loading]) {
        if (!list) continue;
        if (ch.kind === 'leave') list.delete(ch.visitor_id);
        else if (ch.visitor) list.set(ch.visitor_id, merged(ch.visitor, list.get(ch.visitor_id)));
      }
      const now = this.visitors.get(ch.visitor_id);
      if (!old || !now || old.started_at !== now.started_at || !old.new !== !now.new) reorder = true;
    }
    if (reorder) this.changed();
    else this.schedule();
    // The history again when the selected visitor moved on (or left), not on every answer.
    const now = this.visitors.get(this.selected);
    if (this.selected && (!now || !before || (whole(now) && now.page_count !== before.page_count))) this.loadHistory();
    else if (now !== before) this.renderDetail();
  }

  /** The node stopped sending changes (this connection was over its byte budget). */
  onStale() {
    this.stale.hidden = false;
    clearTimeout(this.refetch);
    this.refetch = setTimeout(() => {
      if (this.watching) this.watch();
    }, STALE_REFETCH_MS);
  }

  onHistory(f) {
    if (f.visitor_id !== this.selected) return;
    this.history = f.pages || [];
    this.renderDetail();
  }

  who(v) {
    return (v && (v.email || v.name)) || S.anonymous;
  }

  /** The list changed: work out its order again at the next frame. */
  changed() {
    this.order = null;
    this.schedule();
  }

  schedule() {
    if (!this.frame) this.frame = requestAnimationFrame(() => this.paint());
  }

  shown() {
    if (!this.order) {
      const onlyNew = this.newOnly.checked;
      this.order = [...this.visitors.values()]
        .filter((v) => !onlyNew || v.new)
        .sort((a, b) => (a.started_at || 0) - (b.started_at || 0) || (a.visitor_id < b.visitor_id ? -1 : 1))
        .map((v) => v.visitor_id);
    }
    return this.order;
  }

  /** Renders the rows in view between two spacers that stand for the others. */
  paint() {
    this.frame = 0;
    const list = this.shown();
    this.count.textContent = fmt(S.visitorsCount, { n: list.length });
    this.empty.hidden = list.length > 0;
    // How far the list's first row is above the scroller's top edge.
    const scrolled = this.scroller.getBoundingClientRect().top - this.rows.getBoundingClientRect().top;
    const first = Math.max(0, Math.min(list.length, Math.floor(scrolled / ROW_PX) - OVERSCAN));
    this.aboveScreen = Math.max(0, Math.min(list.length, Math.floor(scrolled / ROW_PX)) - first);
    const last = Math.min(list.length, first + Math.ceil(this.scroller.clientHeight / ROW_PX) + 2 * OVERSCAN);
    this.top.style.height = `${first * ROW_PX}px`;
    this.bottom.style.height = `${(list.length - last) * ROW_PX}px`;
    const items = [this.top];
    const rendered = new Map();
    for (let i = first; i < last; i++) {
      const v = this.visitors.get(list[i]);
      const selected = this.selected === v.visitor_id;
      const old = this.rendered.get(v.visitor_id);
      const el = old && old.v === v && old.selected === selected ? old.el : this.row(v, selected);
      el.setAttribute('data-index', String(i));
      el.setAttribute('aria-rowindex', String(i + 2));
      rendered.set(v.visitor_id, { v, selected, el });
      items.push(el);
    }
    items.push(this.bottom);
    this.rendered = rendered;
    place(this.rows, items);
    this.rows.setAttribute('data-first', String(first));
    this.nameView();
  }

  /** Names the rows in the DOM and the selected visitor to the node (`view_visitors`) once
   * painting has been quiet for a moment, and only when they changed. */
  nameView() {
    if (!this.watching || this.loading) return;
    const ids = [...this.rendered.keys()];
    // The rows on screen first, the overscan above them after: when the node names fewer
    // than are rendered, the agent still sees whole records.
    ids.push(...ids.splice(0, this.aboveScreen));
    if (this.selected && !this.rendered.has(this.selected)) ids.unshift(this.selected);
    const key = ids.slice(0, this.viewMax).join(' ');
    if (key === this.viewKey) return;
    clearTimeout(this.viewTimer);
    this.viewTimer = setTimeout(() => {
      if (!this.watching || this.loading || key === this.viewKey) return;
      if (this.send({ type: 'view_visitors', ids: key ? key.split(' ') : [] })) this.viewKey = key;
    }, VIEW_DEBOUNCE_MS);
  }

  row(v, selected) {
    if (!whole(v)) return this.pendingRow(v, selected);
    const time = h('td', { 'data-testid': 'visitor-time', 'data-started': String(v.started_at || 0), text: duration(Date.now() - (v.started_at || Date.now())) });
    const who = h('td', { 'data-testid': 'visitor-email' }, [h('span', { text: this.who(v) })]);
    if (v.email && !v.email_verified) who.appendChild(h('span', { class: 'tag', 'data-testid': 'visitor-unverified', text: S.unverified }));
    if (v.new) who.appendChild(h('span', { class: 'tag', 'data-testid': 'visitor-new', text: S.isNew }));
    const invite = h('button', { type: 'button', class: 'primary', 'data-testid': 'visitor-invite', text: S.startChat, disabled: !!v.chatting, onclick: () => this.invite(v.visitor_id) });
    const details = h('button', { type: 'button', 'data-testid': 'visitor-details', text: S.details, 'aria-pressed': selected ? 'true' : 'false', onclick: () => this.select(v.visitor_id) });
    return h('tr', { 'data-testid': 'visitor-row', 'data-visitor-id': v.visitor_id, 'data-new': v.new ? 'true' : 'false', 'data-chatting': v.chatting ? 'true' : 'false', class: selected ? 'selected' : '' }, [
      who,
      h('td', { class: 'url', 'data-testid': 'visitor-url', title: v.url || '' }, [urlNode(v.url, v.title || v.url)]),
      h('td', { 'data-testid': 'visitor-country', text: v.country || '' }),
      h('td', { 'data-testid': 'visitor-ip', text: v.ip || '' }),
      time,
      h('td', { 'data-testid': 'visitor-chatting', text: v.chatting ? S.yes : S.no }),
      h('td', { class: 'actions' }, [details, invite])
    ]);
  }

  /** A row whose whole record is on its way (named in the view, not answered yet): what the
   * compact row knows, the rest quiet. */
  pendingRow(v, selected) {
    const time = h('td', { 'data-testid': 'visitor-time', 'data-started': String(v.started_at || 0), text: duration(Date.now() - (v.started_at || Date.now())) });
    const who = h('td', { class: 'muted', 'data-testid': 'visitor-email' }, [h('span', { text: S.visitorPending })]);
    if (v.new) who.appendChild(h('span', { class: 'tag', 'data-testid': 'visitor-new', text: S.isNew }));
    const quiet = (testid) => h('td', { class: 'muted', 'data-testid': testid, text: '' });
    const details = h('button', { type: 'button', 'data-testid': 'visitor-details', text: S.details, 'aria-pressed': selected ? 'true' : 'false', onclick: () => this.select(v.visitor_id) });
    return h('tr', { 'data-testid': 'visitor-row', 'data-visitor-id': v.visitor_id, 'data-new': v.new ? 'true' : 'false', 'data-pending': 'true', class: selected ? 'selected' : '' }, [
      who, quiet('visitor-url'), quiet('visitor-country'), quiet('visitor-ip'), time, quiet('visitor-chatting'),
      h('td', { class: 'actions' }, [details])
    ]);
  }

  /** Time on site, for the rows in the DOM only. */
  tick() {
    for (const td of this.rows.querySelectorAll('[data-testid="visitor-time"]')) {
      const started = Number(td.getAttribute('data-started')) || Date.now();
      td.textContent = duration(Date.now() - started);
    }
  }

  select(id) {
    this.selected = this.selected === id ? null : id;
    this.history = null;
    this.changed();
    this.renderDetail();
    if (this.selected) {
      this.loadHistory();
      const first = this.detail.querySelector('textarea');
      if (first) first.focus();
    }
  }

  loadHistory() {
    if (this.selected) this.send({ type: 'visitor_history', visitor_id: this.selected });
  }

  renderDetail() {
    const id = this.selected;
    const d = this.detail;
    d.hidden = !id;
    if (!id) {
      d.textContent = '';
      return;
    }
    const v = this.visitors.get(id);
    // Keep a message being typed across live updates.
    const typed = d.querySelector('textarea') ? d.querySelector('textarea').value : '';
    const hadFocus = d.contains(document.activeElement) && document.activeElement.tagName === 'TEXTAREA';
    d.textContent = '';
    d.appendChild(h('div', { class: 'detail-head' }, [
      h('h2', { 'data-testid': 'visitor-detail-name', text: this.who(v || { email: '' }) }),
      h('button', { type: 'button', class: 'link', text: S.closeDetails, onclick: () => this.select(id) })
    ]));
    if (!v) {
      d.appendChild(h('p', { class: 'muted', 'data-testid': 'visitor-left', text: S.visitorLeft }));
      return;
    }
    if (!whole(v)) {
      d.appendChild(h('p', { class: 'muted', 'data-testid': 'visitor-pending', text: S.visitorPending }));
      return;
    }
    const facts = [v.name && v.email ? v.name : '', v.country, v.ip].filter(Boolean).join(' · ');
    if (facts) d.appendChild(h('p', { class: 'muted', text: facts }));
    d.appendChild(h('h3', { text: fmt(S.pagesSeen, { n: v.page_count || 0 }) }));
    d.appendChild(pageList(this.history));
    const msg = h('textarea', { rows: '2', maxlength: '500', 'aria-label': S.inviteMessage, placeholder: S.inviteMessage, 'data-testid': 'visitor-invite-message' });
    msg.value = typed;
    d.appendChild(msg);
    d.appendChild(h('button', { type: 'button', class: 'primary', 'data-testid': 'visitor-invite-send', text: S.startChat, disabled: !!v.chatting, onclick: () => this.invite(id, msg.value.trim()) }));
    if (hadFocus) msg.focus();
  }

  invite(id, message) {
    const v = this.visitors.get(id);
    const frame = { type: 'invite', visitor_id: id };
    if (message) frame.message = message;
    if (!this.send(frame)) {
      this.show(S.reconnecting, 'error');
      return;
    }
    this.invitedVisitor = this.invitedVisitor || new Map();
    this.invitedVisitor.set(id, this.who(v));
    const typed = this.detail.querySelector('textarea');
    if (typed) typed.value = '';
    this.show(fmt(S.inviting, { who: this.who(v) }), 'pending');
  }

  /** `invitation_result`; returns true when the chat should open. */
  onResult(f) {
    const known = this.invitedVisitor && this.invitedVisitor.get(f.visitor_id);
    const who = known || this.who(this.visitors.get(f.visitor_id));
    const text = S.inviteResult[f.result] ? fmt(S.inviteResult[f.result], { who }) : `${who}: ${f.result}`;
    this.show(text, f.result);
    return f.result === 'accepted';
  }

  /** An error about an invitation or a page history (ref = visitor id); true when it was one. */
  onError(f) {
    if (!f.ref) return false;
    if (f.ref === this.selected && f.code === 4004) {
      this.history = [];
      this.renderDetail();
      return true;
    }
    if (!this.invitedVisitor || !this.invitedVisitor.has(f.ref)) return false;
    this.show(f.message || `error ${f.code}`, 'error');
    return true;
  }

  show(text, result) {
    this.result.textContent = text;
    this.result.setAttribute('data-result', result || '');
    this.result.hidden = !text;
  }
}
