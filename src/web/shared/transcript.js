/* Switchboard shared client: renders a chat transcript inertly. Every participant-supplied
 * string goes through textContent; http(s) URLs become links built with DOM APIs. Entries are
 * kept in sequence order and shown once; own sends show as pending until the entry arrives.
 * Concatenated into /widget.js; served to the console as /console/transcript.js (`SbTranscript`). */
var SbTranscript = (function () {
  'use strict';

  var URL_RE = /\bhttps?:\/\/[^\s<>"'`]+/gi;
  var TRAILING = '.,;:!?\'")]}';

  function count(s, ch) {
    return s.split(ch).length - 1;
  }

  /** Drops sentence punctuation after a URL, but keeps a ")" that closes a "(" inside it. */
  function trimUrl(raw) {
    var url = raw;
    while (url.length) {
      var c = url.charAt(url.length - 1);
      if (TRAILING.indexOf(c) === -1) break;
      if (c === ')' && count(url, '(') >= count(url, ')')) break;
      url = url.slice(0, -1);
    }
    return url;
  }

  /** Appends `text` to `el` as text nodes and safe links. */
  function appendLinkified(el, text) {
    var doc = el.ownerDocument;
    var s = String(text == null ? '' : text);
    var last = 0;
    var m;
    URL_RE.lastIndex = 0;
    while ((m = URL_RE.exec(s))) {
      var url = trimUrl(m[0]);
      var href = null;
      try {
        var u = new URL(url);
        if (u.protocol === 'http:' || u.protocol === 'https:') href = u.href;
      } catch (e) { /* not a URL after all: leave it as text */ }
      if (!href) continue;
      if (m.index > last) el.appendChild(doc.createTextNode(s.slice(last, m.index)));
      el.appendChild(link(doc, href, url));
      last = m.index + url.length;
      URL_RE.lastIndex = last;
    }
    if (last < s.length) el.appendChild(doc.createTextNode(s.slice(last)));
  }

  /** The href of an http(s) URL, or null. */
  function safeHref(url) {
    try {
      var u = new URL(String(url || ''));
      return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : null;
    } catch (e) {
      return null;
    }
  }

  function link(doc, href, text) {
    var a = doc.createElement('a');
    a.href = href;
    a.textContent = text;
    a.target = '_blank';
    a.rel = 'noopener noreferrer';
    return a;
  }

  function formatSize(n) {
    return n < 1024 ? n + ' B' : n < 1048576 ? Math.round(n / 1024) + ' KB' : (n / 1048576).toFixed(1) + ' MB';
  }

  function formatTime(at) {
    if (typeof at !== 'number' || !isFinite(at) || at <= 0) return '';
    try {
      return new Date(at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    } catch (e) {
      return '';
    }
  }

  /** Image types shown in place (the node serves these inline on `view=image`; never SVG). */
  var INLINE_IMAGE = /^image\/(png|jpeg|gif|webp)$/;

  function el(doc, tag, cls, text) {
    var e = doc.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }

  /**
   * list: the element (a <ol>/<ul> with role=log) that holds the entries.
   * opts.me: 'visitor' | 'agent' (own messages are styled as such)
   * opts.isMine(entry): when given, decides which entries are one's own (the console: the
   *   entries whose `author_id` is this agent's, since several agents may write into a chat)
   * opts.prefix: CSS class prefix ('sb-' for the widget, '' for the console)
   * opts.strings: { you, sending, failed, pushed, delivered, read }
   * opts.showOwnName: name own messages by their author instead of "You" (read-only history)
   * opts.fileHref(data): the download URL of a file entry ({id, name, size, content_type})
   * opts.fileOpen(data): when given, a click on a file link calls it instead of following the
   *   href (the console fetches a short-lived signed link first)
   * opts.fileThumb(data, img): when given, PNG/JPEG/GIF/WebP files also get a thumbnail: the
   *   caller sets img.src (an inline-image URL, see docs/protocol.md); a click on it calls
   *   opts.filePreview(data, src). Other types (SVG included) stay download links only.
   * Entries with `event` "link" (data {url,title}), "file" and "push_page" (data {url}) get
   * their own rendering; own messages show the other side's receipts (✓ delivered, ✓✓ read).
   */
  function Transcript(list, opts) {
    this.list = list;
    this.doc = list.ownerDocument;
    this.me = opts.me;
    this.p = opts.prefix || '';
    this.strings = opts.strings || {};
    this.showOwnName = !!opts.showOwnName;
    this.isMine = opts.isMine || null;
    this.fileHref = opts.fileHref || null;
    this.fileOpen = opts.fileOpen || null;
    this.fileThumb = opts.fileThumb || null;
    this.filePreview = opts.filePreview || null;
    this.rcpt = { delivered: '', read: '' };
    this.bySeq = {};
    this.byCmid = {};
    this.seqs = [];
    this.entries = [];
  }

  /** A button holding the image's thumbnail; a click previews it. */
  Transcript.prototype.thumb = function (d) {
    var b = el(this.doc, 'button', this.p + 'thumb');
    b.type = 'button';
    b.setAttribute('data-testid', 'file-thumb');
    b.setAttribute('aria-label', (this.strings.preview || 'Preview') + ': ' + (d.name || ''));
    var img = el(this.doc, 'img', '');
    img.alt = d.name || '';
    img.loading = 'lazy';
    b.appendChild(img);
    this.fileThumb(d, img);
    var preview = this.filePreview;
    b.addEventListener('click', function () { if (preview && img.src) preview(d, img.src); });
    return b;
  };

  Transcript.prototype.has = function (seq) {
    return Object.prototype.hasOwnProperty.call(this.bySeq, seq);
  };

  Transcript.prototype.lastSeq = function () {
    return this.seqs.length ? this.seqs[this.seqs.length - 1] : '';
  };

  /** Whether a (non-system) entry is one's own. */
  Transcript.prototype.mine = function (entry) {
    if (entry.author !== this.me) return false;
    return this.isMine ? this.isMine(entry) : true;
  };

  Transcript.prototype.render = function (entry, pending) {
    var p = this.p;
    var doc = this.doc;
    var isSystem = entry.kind === 'system' || entry.author === 'system';
    var mine = !isSystem && (pending || this.mine(entry));
    var li = el(doc, 'li', p + 'msg ' + p + (isSystem ? 'system' : mine ? 'mine' : 'theirs'));
    li.setAttribute('data-testid', 'message');
    li.setAttribute('data-author', isSystem ? 'system' : String(entry.author || ''));
    li.setAttribute('data-kind', isSystem ? 'system' : 'message');
    if (mine) li.setAttribute('data-mine', 'true');
    if (entry.seq) li.setAttribute('data-seq', entry.seq);
    if (entry.event) li.setAttribute('data-event', entry.event);
    var d = entry.data && typeof entry.data === 'object' ? entry.data : {};
    if (isSystem) {
      var line = el(doc, 'span', p + 'text');
      line.setAttribute('data-testid', 'message-text');
      if (entry.event === 'push_page' && safeHref(d.url || entry.text)) {
        line.appendChild(doc.createTextNode((this.strings.pushed || 'Page opened:') + ' '));
        line.appendChild(link(doc, safeHref(d.url || entry.text), d.url || entry.text));
      } else {
        appendLinkified(line, entry.text);
      }
      li.appendChild(line);
      var st = formatTime(entry.at);
      if (st) li.appendChild(el(doc, 'time', p + 'time', st));
      return li;
    }
    var meta = el(doc, 'div', p + 'meta');
    var who = mine && !this.showOwnName ? (this.strings.you || 'You') : (entry.name || entry.author || '');
    meta.appendChild(el(doc, 'span', p + 'name', who));
    // A supervisor's whisper (internal: the visitor never receives it; agents' views only).
    if (entry.event === 'whisper' || entry.internal) {
      li.setAttribute('data-internal', 'true');
      var tag = el(doc, 'span', p + 'internal', this.strings.internal || 'Whisper (internal)');
      tag.setAttribute('data-testid', 'internal-tag');
      meta.appendChild(tag);
    }
    var t = formatTime(entry.at);
    if (t) meta.appendChild(el(doc, 'time', p + 'time', t));
    li.appendChild(meta);
    var body = el(doc, 'div', p + 'text');
    body.setAttribute('data-testid', 'message-text');
    var href = entry.event === 'link' ? safeHref(d.url || entry.text) : null;
    if (href) {
      // A titled link shows its title and, below it, where it really goes.
      body.appendChild(link(doc, href, d.title || d.url || entry.text));
      if (d.title) body.appendChild(el(doc, 'span', p + 'url', href));
    } else if (entry.event === 'file' && d.id != null && this.fileHref) {
      if (this.fileThumb && INLINE_IMAGE.test(d.content_type || '')) body.appendChild(this.thumb(d));
      var a = link(doc, this.fileHref(d), d.name || entry.text);
      a.removeAttribute('target');
      a.setAttribute('download', d.name || '');
      a.setAttribute('data-testid', 'file-link');
      if (this.fileOpen) {
        var open = this.fileOpen;
        a.addEventListener('click', function (ev) {
          ev.preventDefault();
          open(d);
        });
      }
      body.appendChild(a);
      if (typeof d.size === 'number') body.appendChild(el(doc, 'span', p + 'size', ' (' + formatSize(d.size) + ')'));
    } else {
      appendLinkified(body, entry.text);
    }
    li.appendChild(body);
    if (mine && entry.seq) this.mark(li, entry.seq);
    if (pending) {
      li.setAttribute('data-pending', 'true');
      li.setAttribute('data-cmid', entry.client_msg_id);
      li.appendChild(el(doc, 'span', p + 'state', this.strings.sending || 'Sending…'));
    }
    return li;
  };

  /** Adds a delivered entry; returns false when it was already shown. */
  Transcript.prototype.add = function (entry) {
    if (!entry || !entry.seq || this.has(entry.seq)) return false;
    var li = this.render(entry, false);
    var pend = entry.client_msg_id && this.byCmid[entry.client_msg_id];
    if (pend && pend.parentNode === this.list) this.list.removeChild(pend);
    if (entry.client_msg_id) delete this.byCmid[entry.client_msg_id];
    // Usually the newest; otherwise insert before the first later entry.
    var i = this.seqs.length;
    while (i > 0 && SbSocket.compareSeq(this.seqs[i - 1], entry.seq) > 0) i--;
    var before = i < this.seqs.length ? this.bySeq[this.seqs[i]] : this.firstPending();
    this.list.insertBefore(li, before || null);
    this.seqs.splice(i, 0, entry.seq);
    this.entries.splice(i, 0, entry);
    this.bySeq[entry.seq] = li;
    return true;
  };

  Transcript.prototype.firstPending = function () {
    return this.list.querySelector('[data-pending="true"]');
  };

  /** Shows an own send that is not acknowledged yet. */
  Transcript.prototype.pending = function (item) {
    if (this.byCmid[item.client_msg_id]) return;
    var li = this.render({ kind: 'message', author: this.me, text: item.text, at: item.at, client_msg_id: item.client_msg_id }, true);
    this.byCmid[item.client_msg_id] = li;
    this.list.appendChild(li);
  };

  /** The node stored the send under `seq`; the entry itself follows (or came already). */
  Transcript.prototype.acked = function (cmid, seq) {
    var li = this.byCmid[cmid];
    if (!li) return;
    if (this.has(seq)) {
      if (li.parentNode) li.parentNode.removeChild(li);
      delete this.byCmid[cmid];
      return;
    }
    var state = li.querySelector('.' + this.p + 'state');
    if (state) state.textContent = '';
  };

  Transcript.prototype.failed = function (cmid, message) {
    var li = this.byCmid[cmid];
    if (!li) return;
    li.setAttribute('data-pending', 'failed');
    var state = li.querySelector('.' + this.p + 'state');
    if (state) state.textContent = (this.strings.failed || 'Not sent') + (message ? ': ' + message : '');
    delete this.byCmid[cmid];
  };

  /** Shows ✓ (delivered) or ✓✓ (read) on an own entry covered by the other side's receipts. */
  Transcript.prototype.mark = function (li, seq) {
    var r = this.rcpt;
    var state = r.read && SbSocket.compareSeq(seq, r.read) <= 0 ? 'read' : r.delivered && SbSocket.compareSeq(seq, r.delivered) <= 0 ? 'delivered' : '';
    if (!state) return;
    var span = li.querySelector('[data-testid="receipt"]');
    if (!span) {
      span = el(this.doc, 'span', this.p + 'rcpt');
      span.setAttribute('data-testid', 'receipt');
      li.appendChild(span);
    }
    span.setAttribute('data-state', state);
    span.textContent = state === 'read' ? '✓✓' : '✓';
    span.title = this.strings[state] || state;
    span.setAttribute('aria-label', span.title);
  };

  /** The other side got (or read) everything up to `seq`. */
  Transcript.prototype.receipt = function (seq, state) {
    var r = this.rcpt;
    if (state !== 'read' && state !== 'delivered') return;
    if (SbSocket.compareSeq(seq, r[state]) <= 0) return;
    r[state] = seq;
    if (state === 'read' && SbSocket.compareSeq(seq, r.delivered) > 0) r.delivered = seq;
    for (var i = 0; i < this.entries.length; i++) {
      var e = this.entries[i];
      if (e.kind !== 'system' && this.mine(e)) this.mark(this.bySeq[e.seq], e.seq);
    }
  };

  /** The seq of the newest message from the other side ('' when none). */
  Transcript.prototype.lastTheirs = function () {
    for (var i = this.entries.length - 1; i >= 0; i--) {
      var e = this.entries[i];
      if (e.kind === 'message' && e.author !== this.me && e.author !== 'system') return e.seq;
    }
    return '';
  };

  Transcript.prototype.clear = function () {
    while (this.list.firstChild) this.list.removeChild(this.list.firstChild);
    this.bySeq = {};
    this.byCmid = {};
    this.seqs = [];
    this.entries = [];
    this.rcpt = { delivered: '', read: '' };
  };

  return { Transcript: Transcript, appendLinkified: appendLinkified, formatTime: formatTime, safeHref: safeHref, formatSize: formatSize };
})();
