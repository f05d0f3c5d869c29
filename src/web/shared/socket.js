/* Switchboard shared client: the reconnecting WebSocket, the outbox of unacknowledged sends
 * and sequence numbers. Used by the widget (concatenated into /widget.js inside one function
 * scope) and by the console (loaded as /console/socket.js, where it defines `SbSocket`).
 * Plain ES2017, no dependencies. */
var SbSocket = (function () {
  'use strict';

  /** Close codes from src/protocol/codes.rs (`close`). */
  var CLOSE = { UNAUTHORIZED: 4401, FORBIDDEN_ORIGIN: 4403, SLOW_CONSUMER: 4408, AGENT_CHANGED: 4409, STATE_LOST: 4410, TOO_MANY_ERRORS: 4429, DRAINING: 4503 };

  /** "1700000000000-3" -> [1700000000000, 3]; "" or garbage -> [-1, -1] (before everything). */
  function parseSeq(s) {
    var m = /^(\d+)-(\d+)$/.exec(s || '');
    return m ? [Number(m[1]), Number(m[2])] : [-1, -1];
  }

  /** Orders stream ids numerically by both parts ("ms-n"); "" sorts first. */
  function compareSeq(a, b) {
    var x = parseSeq(a), y = parseSeq(b);
    return x[0] - y[0] || x[1] - y[1];
  }

  /** A client message id: random, 1-64 characters. */
  function uuid() {
    var c = window.crypto;
    if (c && c.randomUUID) return c.randomUUID();
    var b = new Uint8Array(16);
    if (c && c.getRandomValues) c.getRandomValues(b);
    else for (var i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256);
    return Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join('');
  }

  /** Exponential backoff with "equal jitter": half fixed, half random, capped. */
  function backoff(attempt, baseMs, capMs) {
    var d = Math.min(capMs, baseMs * Math.pow(2, attempt));
    return d / 2 + Math.random() * d / 2;
  }

  function storageOf(kind) {
    try {
      var s = window[kind];
      s.setItem('sb.probe', '1');
      s.removeItem('sb.probe');
      return s;
    } catch (e) {
      return null; // disabled storage (privacy mode, sandboxed iframe): keep state in memory only
    }
  }

  function load(storage, key, fallback) {
    if (!storage) return fallback;
    try {
      var v = storage.getItem(key);
      return v == null ? fallback : JSON.parse(v);
    } catch (e) {
      return fallback;
    }
  }

  function save(storage, key, value) {
    if (!storage) return;
    try {
      if (value == null) storage.removeItem(key);
      else storage.setItem(key, JSON.stringify(value));
    } catch (e) { /* quota: the in-memory copy still works */ }
  }

  /**
   * A WebSocket that reconnects by itself.
   * opts.url(): Promise<string>      the URL to open (may refresh credentials first)
   * opts.onFrame(frame)              every parsed server frame
   * opts.onState(state, info)        'connecting' | 'open' | 'waiting' | 'stopped'
   * opts.onUnauthorized(): Promise<boolean>  4401 or a refused upgrade; resolve true to retry
   * opts.pingMs                       keep-alive interval until a `welcome` gives the node's
   *                                   (default 10 s)
   *
   * Keep-alive (docs/protocol.md): send `ping` every interval P; a ping that brought nothing
   * back by the next one means a dead link, and an attempt that brought nothing within P is
   * abandoned. Either way the socket is dropped without waiting for a close handshake (a
   * frozen node never answers it) and the next attempt goes through the load balancer to any
   * node.
   */
  function Connection(opts) {
    this.opts = opts;
    this.ws = null;
    this.attempt = 0;
    this.stopped = true;
    this.timer = null;
    this.pinger = null;
    this.watchdog = null;
    this.lastHeard = 0;
    this.pingAt = 0;
    this.pingMs = opts.pingMs || 10000;
    this.state = 'idle';
    var self = this;
    window.addEventListener('online', function () { if (self.state === 'waiting') self.connectNow(); });
  }

  Connection.prototype.setState = function (state, info) {
    this.state = state;
    if (this.opts.onState) this.opts.onState(state, info || {});
  };

  Connection.prototype.start = function () {
    if (!this.stopped) return;
    this.stopped = false;
    this.connectNow();
  };

  /** Closes for good (logout); start() opens again. */
  Connection.prototype.stop = function () {
    this.stopped = true;
    clearTimeout(this.timer);
    this.quiet();
    if (this.ws) {
      try { this.ws.close(1000, 'bye'); } catch (e) { /* already closed */ }
      this.ws = null;
    }
    this.setState('stopped');
  };

  Connection.prototype.connectNow = function () {
    var self = this;
    clearTimeout(this.timer);
    if (this.stopped) return;
    if (this.ws && this.ws.readyState <= 1) return;
    this.setState('connecting');
    Promise.resolve()
      .then(function () { return self.opts.url(); })
      .then(function (url) {
        if (self.stopped) return;
        self.open(url);
      })
      .catch(function (err) {
        self.retry({ reason: String(err && err.message || err) });
      });
  };

  /** Stops the keep-alive timers of the current socket. */
  Connection.prototype.quiet = function () {
    clearInterval(this.pinger);
    clearTimeout(this.watchdog);
    this.pinger = null;
    this.watchdog = null;
  };

  /**
   * Pings every interval. A tick that finds the previous ping still unanswered (no frame of
   * any kind since it left) calls the link dead: at most two intervals after the last frame.
   * Judging by the unanswered ping rather than by the clock keeps a background tab whose
   * timers the browser slows down from calling a healthy link dead.
   */
  Connection.prototype.keepAlive = function (ws) {
    var self = this;
    clearTimeout(this.watchdog);
    clearInterval(this.pinger);
    this.pingAt = 0;
    this.pinger = setInterval(function () {
      if (self.pingAt > self.lastHeard) {
        self.abandon(ws, 'dead link');
        return;
      }
      if (self.send({ type: 'ping' })) self.pingAt = Date.now();
    }, this.pingMs);
  };

  /**
   * Gives up on a socket that went silent (or never opened): no close handshake, which a
   * stalled node would never answer. The next attempt waits a random part of half an interval,
   * so the clients of a stalled node do not all arrive elsewhere at once.
   */
  Connection.prototype.abandon = function (ws, reason) {
    if (this.ws !== ws) return;
    this.ws = null;
    this.quiet();
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    try { ws.close(); } catch (e) { /* ignore */ }
    if (this.stopped) return;
    if (reason === 'dead link') {
      this.attempt = 0;
      this.retry({ reason: reason }, Math.random() * this.pingMs / 2);
    } else {
      this.retry({ reason: reason });
    }
  };

  Connection.prototype.open = function (url) {
    var self = this;
    var ws;
    try {
      ws = new WebSocket(url);
    } catch (e) {
      this.retry({ reason: 'bad url' });
      return;
    }
    this.ws = ws;
    var opened = false;
    var heard = false;
    // An attempt that brings nothing within one interval (e.g. the load balancer picked the
    // stalled node again) is given up; `welcome` is the first frame of a healthy node.
    clearTimeout(this.watchdog);
    this.watchdog = setTimeout(function () { self.abandon(ws, 'no answer'); }, this.pingMs);
    ws.onopen = function () {
      opened = true;
      self.setState('open');
    };
    ws.onmessage = function (ev) {
      self.lastHeard = Date.now();
      var frame;
      try {
        frame = JSON.parse(ev.data);
      } catch (e) {
        frame = null;
      }
      if (!heard) {
        heard = true;
        self.attempt = 0; // a node that answered is healthy; start backoff afresh
        if (frame && frame.type === 'welcome' && frame.ping_interval_ms > 0) self.pingMs = frame.ping_interval_ms;
        self.keepAlive(ws);
      }
      if (!frame || typeof frame.type !== 'string') return;
      try {
        self.opts.onFrame(frame);
      } catch (e) {
        if (window.console) console.error('switchboard: frame handler failed', frame.type, e);
      }
    };
    ws.onclose = function (ev) {
      if (self.ws !== ws) return;
      self.ws = null;
      self.quiet();
      if (self.stopped) return;
      var code = ev.code;
      if (code === CLOSE.FORBIDDEN_ORIGIN) {
        self.stopped = true;
        self.setState('stopped', { code: code, reason: 'origin' });
        return;
      }
      // A refused upgrade (HTTP 401 for a bad token) looks like 1006 before open.
      if (code === CLOSE.UNAUTHORIZED || !opened) {
        Promise.resolve(self.opts.onUnauthorized ? self.opts.onUnauthorized(code) : true).then(function (again) {
          if (again) self.retry({ code: code });
          else self.stop();
        }, function () { self.retry({ code: code }); });
        return;
      }
      // 4410: the chats named by the `chat_lost` frames before it are gone (the app forgot
      // them and told the user); a new connection starts clean and resumes none of them.
      if (code === CLOSE.DRAINING || code === CLOSE.SLOW_CONSUMER || code === CLOSE.AGENT_CHANGED || code === CLOSE.STATE_LOST) self.attempt = 0;
      if (code === CLOSE.TOO_MANY_ERRORS) self.attempt = Math.max(self.attempt, 5);
      self.retry({ code: code });
    };
  };

  /** Schedules the next attempt: after `delay` when given, else after the backoff. */
  Connection.prototype.retry = function (info, delay) {
    if (this.stopped) return;
    var self = this;
    if (delay == null) {
      delay = backoff(this.attempt, 500, 30000);
      this.attempt = Math.min(this.attempt + 1, 16);
    }
    info.delay = delay;
    this.setState('waiting', info);
    clearTimeout(this.timer);
    this.timer = setTimeout(function () { self.connectNow(); }, delay);
  };

  /** Sends a frame if the socket is open; false when it is not (the caller keeps it). */
  Connection.prototype.send = function (frame) {
    if (!this.ws || this.ws.readyState !== 1) return false;
    try {
      this.ws.send(JSON.stringify(frame));
      return true;
    } catch (e) {
      return false;
    }
  };

  Connection.prototype.isOpen = function () {
    return !!this.ws && this.ws.readyState === 1;
  };

  /**
   * Sends not yet acknowledged, kept in storage so a reload or a navigation resends them
   * with the same client_msg_id (the node stores a resend once).
   */
  function Outbox(storage, key) {
    this.storage = storage;
    this.key = key;
    this.items = load(storage, key, []);
    if (!Array.isArray(this.items)) this.items = [];
  }

  Outbox.prototype.persist = function () {
    save(this.storage, this.key, this.items.length ? this.items : null);
  };

  /** extra: { kind: 'send_link', url, title } or { kind: 'push_page', url } (text is the url). */
  Outbox.prototype.add = function (chatId, text, extra) {
    var item = { chat_id: chatId, client_msg_id: uuid(), text: text, at: Date.now() };
    if (extra) Object.keys(extra).forEach(function (k) { item[k] = extra[k]; });
    this.items.push(item);
    this.persist();
    return item;
  };

  Outbox.prototype.find = function (clientMsgId) {
    for (var i = 0; i < this.items.length; i++) if (this.items[i].client_msg_id === clientMsgId) return this.items[i];
    return null;
  };

  /** Removes an item (acknowledged, or refused for good); returns it. */
  Outbox.prototype.remove = function (clientMsgId) {
    var item = this.find(clientMsgId);
    if (item) {
      this.items.splice(this.items.indexOf(item), 1);
      this.persist();
    }
    return item;
  };

  Outbox.prototype.pending = function (chatId) {
    return this.items.filter(function (i) { return i.chat_id === chatId; });
  };

  Outbox.prototype.dropChat = function (chatId) {
    this.items = this.items.filter(function (i) { return i.chat_id !== chatId; });
    this.persist();
  };

  /** The frame that (re)sends an item. */
  function frameOf(i) {
    var f = { type: i.kind || 'send', chat_id: i.chat_id, client_msg_id: i.client_msg_id };
    if (i.kind) f.url = i.url;
    else f.text = i.text;
    if (i.kind === 'send_link' && i.title) f.title = i.title;
    return f;
  }

  /** (Re)sends every pending item of a chat, in order. */
  Outbox.prototype.flush = function (conn, chatId) {
    this.pending(chatId).forEach(function (i) { conn.send(frameOf(i)); });
  };

  return {
    CLOSE: CLOSE,
    compareSeq: compareSeq,
    uuid: uuid,
    backoff: backoff,
    storageOf: storageOf,
    load: load,
    save: save,
    Connection: Connection,
    Outbox: Outbox,
    frameOf: frameOf
  };
})();
