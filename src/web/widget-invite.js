/* Switchboard widget, proactive chat: an agent's invitation shown as an accept / decline prompt
 * until it expires (kept in sessionStorage `sb.invite`, so it survives a navigation), and the
 * answer sent to the node. Served before widget.js in the same function scope (see
 * src/web/README.md). */
var SbInvite = (function () {
  'use strict';

  var KEY = 'sb.invite';

  /**
   * ctx: { S, fmt, session (storage), ui() -> the widget's elements, chat() -> its chat or null,
   *        send(frame) -> bool, showError(text), accepted(invitation) }
   */
  function create(ctx) {
    var S = ctx.S;
    var current = null;
    // An invitation that came while the visitor's chat was still on (its end may reach the
    // widget after the invitation): shown when that chat ends, if it has not expired.
    var held = null;
    var timer = null;

    function show(inv) {
      var ui = ctx.ui();
      clearTimeout(timer);
      if (!inv) held = null;
      var left = inv ? Number(inv.expires_at) - Date.now() : 0;
      var c = ctx.chat();
      if (inv && left > 0 && c && c.phase !== 'ended') held = inv;
      if (!inv || left <= 0 || (c && c.phase !== 'ended')) inv = null;
      current = inv;
      SbSocket.save(ctx.session, KEY, inv);
      ui.invite.hidden = !inv;
      if (!inv) return;
      ui.inviteText.textContent = ctx.fmt(S.invited, { name: inv.agent_name || S.agent });
      ui.inviteMsg.textContent = inv.message || '';
      ui.inviteMsg.hidden = !inv.message;
      timer = setTimeout(function () { show(null); }, left);
    }

    function answer(yes) {
      var inv = current;
      if (!inv) return;
      if (!ctx.send({ type: yes ? 'accept_invitation' : 'decline_invitation', chat_id: inv.chat_id })) {
        ctx.showError(S.notConnected);
        return;
      }
      show(null);
      if (yes) ctx.accepted(inv);
      else ctx.ui().button.focus();
    }

    return {
      show: show,
      answer: answer,
      /** The invitation on show stored by an earlier page. */
      restore: function () { show(SbSocket.load(ctx.session, KEY, null)); },
      /** The visitor's chat ended: an invitation held back meanwhile shows now. */
      chatEnded: function () {
        var inv = held;
        held = null;
        if (inv) show(inv);
      },
      /** Whether the invitation on show (or held back) is for `chatId`. */
      isFor: function (chatId) {
        return (!!current && current.chat_id === chatId) || (!!held && held.chat_id === chatId);
      }
    };
  }

  return { create: create };
})();
