/* Switchboard widget, the visitor's identity: the token kept in the site's localStorage
 * (`sb.visitor`, in memory where storage is refused) and `POST /api/visitor/session`, which
 * issues or renews it and says what the node accepts (file types, transcript e-mails). Served
 * before widget.js in the same function scope (see src/web/README.md). */
var SbVisitorSession = (function () {
  'use strict';

  var KEY = 'sb.visitor';

  /** ctx: { base, local (storage or null), answered(json) with the whole session answer } */
  function create(ctx) {
    var memToken = null;
    var pending = null;

    function token() {
      try { return ctx.local ? ctx.local.getItem(KEY) : memToken; } catch (e) { return memToken; }
    }

    function keep(t) {
      memToken = t;
      try { if (ctx.local) ctx.local.setItem(KEY, t); } catch (e) { /* memory only */ }
    }

    /** Asks for a token (renewing the one we have); one request at a time. */
    function start() {
      if (pending) return pending;
      pending = fetch(ctx.base + '/api/visitor/session', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ token: token() || null }),
        credentials: 'omit'
      }).then(function (r) {
        if (!r.ok) throw new Error('session ' + r.status);
        return r.json();
      }).then(function (j) {
        if (!j || typeof j.token !== 'string') throw new Error('session: no token');
        keep(j.token);
        ctx.answered(j);
        return j.token;
      });
      pending.then(function () { pending = null; }, function () { pending = null; });
      return pending;
    }

    return { token: token, start: start };
  }

  return { create: create };
})();
