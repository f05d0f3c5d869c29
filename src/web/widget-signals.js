/* Switchboard widget, what goes along with the messages: the visitor's typing sent to the
 * agent ("true" at most every 3 s while the composer has text, "false" after 4 s idle), the
 * agent's typing shown (for 5 s after each "true"), and receipts: "read" while the pane is open
 * and the page visible, "delivered" otherwise. Served before widget.js in the same function
 * scope (see src/web/README.md). */
var SbSignals = (function () {
  'use strict';

  /**
   * ctx: { S, fmt, ui() -> the widget's elements, chat() -> its chat or null, live(id) -> bool,
   *        send(frame) -> bool, lastTheirs() -> seq of the newest entry not the visitor's,
   *        open() -> whether the pane is open, sent() -> {delivered, read}: seqs already told }
   */
  function create(ctx) {
    var typingAt = 0;
    var typingTimer = null;
    var theirTimer = null;

    function active() {
      var c = ctx.chat();
      return c && c.phase === 'active' && ctx.live(c.id) ? c : null;
    }

    function setTyping(on) {
      var c = active();
      if (!c) return;
      clearTimeout(typingTimer);
      if (on) {
        if (Date.now() - typingAt > 3000) {
          typingAt = Date.now();
          ctx.send({ type: 'typing', chat_id: c.id, typing: true });
        }
        typingTimer = setTimeout(function () { setTyping(false); }, 4000);
      } else if (typingAt) {
        typingAt = 0;
        ctx.send({ type: 'typing', chat_id: c.id, typing: false });
      }
    }

    function showTyping(on) {
      var ui = ctx.ui();
      var c = ctx.chat();
      clearTimeout(theirTimer);
      ui.typing.hidden = !on;
      ui.typing.textContent = on ? ctx.fmt(ctx.S.typing, { name: (c && c.agent) || ctx.S.agent }) : '';
      if (on) theirTimer = setTimeout(function () { showTyping(false); }, 5000);
    }

    function receipts() {
      var c = ctx.chat();
      if (!c || !ctx.live(c.id)) return;
      var seq = ctx.lastTheirs();
      var state = ctx.open() && document.visibilityState === 'visible' ? 'read' : 'delivered';
      var sent = ctx.sent();
      if (!seq || SbSocket.compareSeq(seq, sent[state] || '') <= 0) return;
      if (ctx.send({ type: 'receipt', chat_id: c.id, seq: seq, state: state })) sent[state] = seq;
    }

    return { setTyping: setTyping, showTyping: showTyping, receipts: receipts };
  }

  return { create: create };
})();
