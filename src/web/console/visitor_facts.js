// How the console shows what it knows of a site visitor, in the site-visitors view and in the
// panel beside a chat: durations, links to the pages they saw (built with DOM APIs, http(s)
// only) and the page history list.

import { S, fmt, h, formatDate } from './strings.js';

/** "m:ss" or "h:mm:ss". */
export function duration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return hh ? `${hh}:${String(mm).padStart(2, '0')}:${ss}` : `${mm}:${ss}`;
}

/** A DOM-built link for an http(s) URL the visitor's browser reported; plain text otherwise. */
export function urlNode(url, text) {
  const href = SbTranscript.safeHref(url);
  if (!href) return h('span', { text: text || url || '' });
  return h('a', { href, target: '_blank', rel: 'noopener noreferrer', text: text || url });
}

/** The pages of a visit, oldest first, as an ordered list. */
export function pageList(pages) {
  const ol = h('ol', { class: 'pages', 'data-testid': 'visitor-pages' });
  for (const pg of pages || []) {
    const li = h('li', { 'data-testid': 'visitor-page', 'data-url': pg.url || '' }, [urlNode(pg.url, pg.title || pg.url), h('small', { text: ` ${formatDate(pg.at)}` })]);
    if (pg.title) li.appendChild(h('div', { class: 'muted small', text: pg.url || '' }));
    if (pg.referrer) li.appendChild(h('div', { class: 'muted small', text: fmt(S.referrer, { referrer: pg.referrer }) }));
    ol.appendChild(li);
  }
  return ol;
}

/** "shop.example/orders/1042": a short place for a title. */
export function shortPlace(url) {
  try {
    const u = new URL(url);
    const path = u.pathname === '/' ? '' : u.pathname;
    const s = `${u.host}${path}`;
    return s.length > 40 ? `${s.slice(0, 39)}…` : s;
  } catch (e) {
    return '';
  }
}

/** "Chrome 131 on Linux" from a User-Agent; '' when nothing is recognised. */
export function browserName(ua) {
  const s = String(ua || '');
  const m = /(Edg|OPR|Firefox|Chrome|Version)\/(\d+)/.exec(s);
  let name = '';
  if (m) name = `${{ Edg: 'Edge', OPR: 'Opera', Version: /Safari/.test(s) ? 'Safari' : 'Browser' }[m[1]] || m[1]} ${m[2]}`;
  const os = /Android/.test(s) ? 'Android' : /iPhone|iPad/.test(s) ? 'iOS' : /Windows/.test(s) ? 'Windows' : /Mac OS X/.test(s) ? 'macOS' : /Linux/.test(s) ? 'Linux' : '';
  if (name && os) return fmt(S.browserOn, { browser: name, os });
  return name || os;
}
