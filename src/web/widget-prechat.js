/* Switchboard widget, the pre-chat form: its fields checked (the site's required ones, the
 * e-mail's shape), the chat requested, and the name and e-mail the visitor gave remembered in
 * localStorage `sb.contact`, so "Start a new chat" (and the next visit) fills them. Served
 * before widget.js in the same function scope (see src/web/README.md). */
var SbPrechat = (function () {
  'use strict';

  var CONTACT_KEY = 'sb.contact';
  var FIELDS = ['name', 'email', 'question'];

  /**
   * ctx: { S, fmt, local (storage), required: [field name], queue, ui() -> the widget's
   *        elements, send(frame) -> bool, asked({question, email}): what the request said }
   */
  function create(ctx) {
    var S = ctx.S;

    /** Name and e-mail the visitor gave last. */
    function contact() {
      return SbSocket.load(ctx.local, CONTACT_KEY, null) || {};
    }

    function fill() {
      var fields = ctx.ui().fields;
      var c = contact();
      if (c.name && !fields.name.value) fields.name.value = c.name;
      if (c.email && !fields.email.value) fields.email.value = c.email;
    }

    function showProblem(text) {
      var ui = ctx.ui();
      ui.formError.textContent = text;
      ui.formError.hidden = false;
    }

    /** Checks the fields and sends `request_chat`; true when it went out. */
    function submit() {
      var ui = ctx.ui();
      var values = {};
      var problem = null;
      FIELDS.forEach(function (k) {
        var v = ui.fields[k].value.trim();
        values[k] = v || null;
        var invalid = false;
        if (!v && ctx.required.indexOf(k) !== -1) {
          problem = problem || ctx.fmt(S.required, { field: S[k] });
          invalid = true;
        } else if (k === 'email' && v && !/^[^\s@]+@[^\s@]+\.[^\s@.]+$/.test(v)) {
          problem = problem || S.invalidEmail;
          invalid = true;
        }
        ui.fields[k].setAttribute('aria-invalid', invalid ? 'true' : 'false');
      });
      if (problem) {
        showProblem(problem);
        return false;
      }
      ui.formError.hidden = true;
      SbSocket.save(ctx.local, CONTACT_KEY, values.name || values.email ? { name: values.name, email: values.email } : null);
      ctx.asked({ question: values.question, email: values.email });
      if (!ctx.send({ type: 'request_chat', name: values.name, email: values.email, question: values.question, queue: ctx.queue })) {
        showProblem(S.notConnected);
        return false;
      }
      return true;
    }

    return { contact: contact, fill: fill, submit: submit };
  }

  return { create: create };
})();
