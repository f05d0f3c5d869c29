// Chat offers: one card per offered chat with Accept / Deny / Close, a countdown to
// `expires_at`, and the agent alerted when one arrives (notify.js). Revoked offers
// stay a few seconds with their reason ("Customer Rejected", "Timed out", ...).

import { S, fmt, h, twoStep } from './strings.js';
import { alertAgent, setTitleCount } from './notify.js';

const KEEP_REVOKED_MS = 10000;
const STORE_KEY = 'sb.offers';

function notify(offer) {
  alertAgent({ title: S.notificationTitle, body: `${offer.name || S.anonymous}: ${offer.question || ''}`, tag: `sb-offer-${offer.chat_id}` });
}

export class Offers {
  /**
   * list: the <ul> of cards; empty: the "No offers." line.
   * actions: { accept(offer), deny(offer), close(offer) }
   */
  constructor(list, empty, actions) {
    this.list = list;
    this.empty = empty;
    this.actions = actions;
    this.cards = new Map();
    this.saved = this.load();
    this.ticker = setInterval(() => this.tick(), 500);
  }

  load() {
    try {
      return JSON.parse(sessionStorage.getItem(STORE_KEY) || '{}') || {};
    } catch (e) {
      return {};
    }
  }

  persist() {
    const out = {};
    for (const [id, c] of this.cards) if (!c.revoked) out[id] = c.offer;
    try {
      sessionStorage.setItem(STORE_KEY, JSON.stringify(out));
    } catch (e) {
      /* memory only */
    }
  }

  /** Details of an offer (also kept after accepting, for the chat tab's header). */
  info(chatId) {
    const c = this.cards.get(chatId);
    return (c && c.offer) || this.saved[chatId] || null;
  }

  /** A new `offer` frame. */
  add(offer, { quiet = false } = {}) {
    const existing = this.cards.get(offer.chat_id);
    if (existing && !existing.revoked) {
      existing.offer = offer;
      this.fill(existing);
      return;
    }
    if (existing) this.drop(offer.chat_id);
    const card = { offer, revoked: null, el: null, timer: null };
    this.build(card);
    this.cards.set(offer.chat_id, card);
    this.saved[offer.chat_id] = offer;
    this.persist();
    this.update();
    if (!quiet) notify(offer);
  }

  /** An offered chat listed by `welcome` after a reconnect: keep or recreate its card. */
  restore(summary) {
    if (this.cards.has(summary.chat_id)) return;
    const saved = this.saved[summary.chat_id];
    this.add(saved || { chat_id: summary.chat_id, queue: summary.queue, name: '', email: '', question: '', expires_at: 0 }, { quiet: true });
  }

  /** Offers the node no longer lists are gone. */
  retain(ids) {
    for (const [id, c] of this.cards) if (!c.revoked && !ids.has(id)) this.drop(id);
  }

  build(card) {
    const o = card.offer;
    const btn = (label, testid, fn, cls) =>
      h('button', { type: 'button', class: cls || '', 'data-testid': testid, text: label, onclick: () => fn(card.offer) });
    card.title = h('strong', { class: 'offer-name', 'data-testid': 'offer-name' });
    card.email = h('span', { class: 'offer-email', 'data-testid': 'offer-email' });
    card.question = h('p', { class: 'offer-question', 'data-testid': 'offer-question' });
    card.queue = h('span', { class: 'offer-queue' });
    card.countdown = h('span', { class: 'offer-countdown', 'data-testid': 'offer-countdown', 'aria-live': 'off' });
    card.reason = h('p', { class: 'offer-reason', 'data-testid': 'offer-reason', role: 'status', hidden: true });
    card.buttons = h('div', { class: 'offer-buttons' }, [
      btn(S.accept, 'offer-accept', this.actions.accept, 'primary'),
      btn(S.deny, 'offer-deny', this.actions.deny),
      // Closing ends the visitor's request: asked once more.
      twoStep(h('button', { type: 'button', 'data-testid': 'offer-close', text: S.close }), S.closeConfirm, () => this.actions.close(card.offer))
    ]);
    card.el = h('li', { class: 'offer', 'data-testid': 'offer', 'data-chat-id': o.chat_id }, [
      h('div', { class: 'offer-head' }, [card.title, card.countdown]),
      card.email,
      card.queue,
      card.question,
      card.reason,
      card.buttons
    ]);
    this.fill(card);
    this.list.appendChild(card.el);
  }

  fill(card) {
    const o = card.offer;
    card.title.textContent = fmt(S.offerFrom, { name: o.name || S.anonymous });
    card.email.textContent = o.email ? (o.email_verified ? o.email : fmt(S.unverifiedEmail, { email: o.email })) : '';
    card.email.setAttribute('data-verified', o.email_verified ? 'true' : 'false');
    card.email.hidden = !o.email;
    card.question.textContent = o.question || '';
    card.question.hidden = !o.question;
    card.queue.textContent = fmt(S.queue, { queue: o.queue || '' });
    this.tickCard(card);
  }

  tickCard(card) {
    if (card.revoked) return;
    const exp = Number(card.offer.expires_at) || 0;
    if (!exp) {
      card.countdown.textContent = '';
      return;
    }
    const s = Math.max(0, Math.ceil((exp - Date.now()) / 1000));
    card.countdown.textContent = s > 0 ? fmt(S.expiresIn, { s }) : S.expired;
    card.el.classList.toggle('urgent', s <= 5);
  }

  tick() {
    for (const c of this.cards.values()) this.tickCard(c);
  }

  /** The local agent answered; disable the buttons until the node confirms. */
  busy(chatId) {
    const c = this.cards.get(chatId);
    if (c) for (const b of c.buttons.querySelectorAll('button')) b.disabled = true;
  }

  /** The request failed: enable the buttons again. */
  unbusy(chatId) {
    const c = this.cards.get(chatId);
    if (c && !c.revoked) for (const b of c.buttons.querySelectorAll('button')) b.disabled = false;
  }

  has(chatId) {
    const c = this.cards.get(chatId);
    return !!c && !c.revoked;
  }

  /** `offer_revoked`: accepted/denied cards go at once, others show their reason first. */
  revoke(chatId, reason) {
    const c = this.cards.get(chatId);
    if (!c) return;
    if (reason === 'accepted' || reason === 'denied') {
      this.drop(chatId);
      return;
    }
    c.revoked = reason;
    c.el.classList.add('revoked');
    c.el.setAttribute('data-revoked', reason);
    c.reason.textContent = S.revoked[reason] || reason;
    c.reason.hidden = false;
    c.countdown.textContent = '';
    c.buttons.hidden = true;
    this.persist();
    clearTimeout(c.timer);
    c.timer = setTimeout(() => this.drop(chatId), KEEP_REVOKED_MS);
  }

  drop(chatId) {
    const c = this.cards.get(chatId);
    if (!c) return;
    clearTimeout(c.timer);
    c.el.remove();
    this.cards.delete(chatId);
    this.persist();
    this.update();
  }

  count() {
    let n = 0;
    for (const c of this.cards.values()) if (!c.revoked) n++;
    return n;
  }

  update() {
    this.empty.hidden = this.cards.size > 0;
    setTitleCount('offers', this.count());
  }
}
