/* Switchboard widget, files: the attach button's picker filtered to the types the node accepts
 * (`files` of the session answer), uploads from the picker, a drop on the pane or a paste into
 * the composer, refusals in plain words, and image thumbnails with a preview. Served before
 * widget.js in the same function scope (see src/web/README.md). */
var SbWidgetFiles = (function () {
  'use strict';

  var STRINGS = {
    attach: 'Attach a file',
    uploading: 'Uploading {name}…',
    uploadFailed: 'Could not send the file: {message}',
    fileTypeRefused: 'This kind of file cannot be sent here. You can send {kinds}.',
    fileTooLarge: 'This file is too large. Files can be up to {size}.',
    fileEmpty: 'This file is empty.',
    fileNotNow: 'Files can be sent once an agent has joined the chat.',
    dropHere: 'Drop the file to send it',
    preview: 'Preview',
    closePreview: 'Close preview',
    kindImage: 'images',
    kindPdf: 'PDF documents',
    kindText: 'text files',
    kindZip: 'ZIP archives',
    kindOther: '{name} files',
    or: 'or'
  };

  var CSS = '.sb-thumb{display:block;margin:4px 0;padding:0;border:0;background:none;cursor:zoom-in}' +
    '.sb-thumb img{display:block;max-width:200px;max-height:160px;border-radius:6px}' +
    '.sb-thumb:focus-visible{outline:3px solid #f5a623;outline-offset:2px}' +
    '.sb-drop{outline:3px dashed var(--sb-c,#1f5fbf);outline-offset:-6px}' +
    '.sb-preview{position:fixed;inset:0;z-index:2147483002;display:flex;align-items:center;justify-content:center;background:rgba(0,0,0,.8)}' +
    '.sb-preview img{max-width:94vw;max-height:86vh;background:#fff}' +
    '.sb-preview .sb-x{position:absolute;top:10px;right:14px;font-size:30px}';

  /** Whether `mime` is in the node's list (entries ending in "/" are prefixes). */
  function allows(types, mime) {
    return types.some(function (t) { return t.slice(-1) === '/' ? mime.indexOf(t) === 0 && mime.length > t.length : mime === t; });
  }

  /** The picker's `accept` attribute: "image/" becomes "image/*". */
  function accept(types) {
    return types.map(function (t) { return t.slice(-1) === '/' ? t + '*' : t; }).join(',');
  }

  /** "images, PDF documents or text files": what a visitor may send, without MIME types. */
  function kinds(types, S, fmt) {
    var known = { 'image/': S.kindImage, 'application/pdf': S.kindPdf, 'text/plain': S.kindText, 'application/zip': S.kindZip };
    var names = [];
    types.forEach(function (t) {
      var n = known[t] || fmt(S.kindOther, { name: t.replace(/\/$/, '').split('/').pop().toUpperCase() });
      if (names.indexOf(n) === -1) names.push(n);
    });
    if (names.length < 2) return names.join('');
    return names.slice(0, -1).join(', ') + ' ' + S.or + ' ' + names[names.length - 1];
  }

  function size(n) {
    return n >= 1048576 ? Math.round(n / 104857.6) / 10 + ' MB' : Math.round(n / 1024) + ' KB';
  }

  /**
   * ctx: { h, S, fmt, root (shadow root), base, token() -> visitor token,
   *        chat() -> the widget's chat or null, showError(text), note(text) }
   */
  function create(ctx) {
    var h = ctx.h, S = ctx.S, fmt = ctx.fmt;
    var limits = null; // { allowed_types, max_bytes } from the session answer
    var input = h('input', { type: 'file', hidden: true, tabindex: '-1', 'data-testid': 'sb-file' });
    input.addEventListener('change', function () {
      upload(input.files && input.files[0]);
      input.value = '';
    });

    function configure(files) {
      if (!files || !Array.isArray(files.allowed_types)) return;
      limits = { types: files.allowed_types.map(String), max: Number(files.max_bytes) || 0 };
      input.setAttribute('accept', accept(limits.types));
    }

    /** A refusal in the visitor's words, checked here first and mapped from the node's status. */
    function refusal(f, status) {
      if (status === 415 || (limits && !allows(limits.types, (f.type || '').toLowerCase()))) {
        return fmt(S.fileTypeRefused, { kinds: limits ? kinds(limits.types, S, fmt) : '' });
      }
      if (status === 413 || (limits && limits.max && f.size > limits.max)) {
        return fmt(S.fileTooLarge, { size: limits ? size(limits.max) : '' });
      }
      if (!status && f.size === 0) return S.fileEmpty;
      return null;
    }

    function upload(f) {
      var c = ctx.chat();
      if (!f) return;
      if (!c || c.phase !== 'active') {
        ctx.showError(S.fileNotNow);
        return;
      }
      var refused = refusal(f, 0);
      if (refused) {
        ctx.showError(refused);
        return;
      }
      ctx.note(fmt(S.uploading, { name: f.name }));
      fetch(ctx.base + '/api/chats/' + encodeURIComponent(c.id) + '/files?name=' + encodeURIComponent(f.name || 'file'), {
        method: 'POST',
        headers: { 'Content-Type': f.type || 'application/octet-stream', Authorization: 'Bearer ' + ctx.token() },
        body: f,
        credentials: 'omit'
      }).then(function (r) {
        if (r.ok) return;
        var plain = refusal(f, r.status);
        if (plain) throw new Error(plain);
        return r.json().catch(function () { return {}; }).then(function (j) {
          throw new Error(fmt(S.uploadFailed, { message: (j && j.message) || 'HTTP ' + r.status }));
        });
      }).catch(function (e) {
        ctx.showError(e.message);
      }).then(function () {
        ctx.note('');
      });
    }

    /** Files dropped on `el` (the pane) are uploaded; a dashed outline shows where to drop. */
    function bindDrop(el) {
      var depth = 0;
      function has(e) { return e.dataTransfer && Array.prototype.indexOf.call(e.dataTransfer.types || [], 'Files') !== -1; }
      el.addEventListener('dragenter', function (e) {
        if (!has(e)) return;
        e.preventDefault();
        depth++;
        el.classList.add('sb-drop');
      });
      el.addEventListener('dragover', function (e) {
        if (!has(e)) return;
        e.preventDefault();
        e.dataTransfer.dropEffect = 'copy';
      });
      el.addEventListener('dragleave', function () {
        if (--depth <= 0) {
          depth = 0;
          el.classList.remove('sb-drop');
        }
      });
      el.addEventListener('drop', function (e) {
        if (!has(e)) return;
        e.preventDefault();
        depth = 0;
        el.classList.remove('sb-drop');
        upload(e.dataTransfer.files[0]);
      });
    }

    /** A file pasted into `el` (the composer) is uploaded; pasted text stays text. */
    function bindPaste(el) {
      el.addEventListener('paste', function (e) {
        var files = e.clipboardData && e.clipboardData.files;
        if (!files || !files.length) return;
        e.preventDefault();
        upload(files[0]);
      });
    }

    function href(d) {
      return ctx.base + '/api/files/' + encodeURIComponent(d.id) + '?token=' + encodeURIComponent(ctx.token() || '');
    }

    var previewImg = h('img', { alt: '', 'data-testid': 'sb-preview-image' });
    var previewClose = h('button', { type: 'button', class: 'sb-x', 'aria-label': S.closePreview, 'data-testid': 'sb-preview-close', text: '×', onclick: function () { closePreview(); } });
    var preview = h('div', { class: 'sb-preview', role: 'dialog', 'aria-modal': 'true', 'aria-label': S.preview, 'data-testid': 'sb-preview', hidden: true }, [previewClose, previewImg]);
    var opener = null;
    preview.addEventListener('click', function (e) { if (e.target === preview) closePreview(); });
    preview.addEventListener('keydown', function (e) {
      if (e.key === 'Escape') {
        e.preventDefault();
        e.stopPropagation();
        closePreview();
      }
    });
    ctx.root.appendChild(preview);

    function openPreview(d, src) {
      opener = ctx.root.activeElement || null;
      previewImg.src = src;
      previewImg.alt = d.name || '';
      preview.hidden = false;
      previewClose.focus();
    }

    function closePreview() {
      preview.hidden = true;
      previewImg.removeAttribute('src');
      if (opener && opener.focus) opener.focus();
    }

    return {
      input: input,
      configure: configure,
      upload: upload,
      bindDrop: bindDrop,
      bindPaste: bindPaste,
      href: href,
      thumb: function (d, img) { img.src = href(d) + '&view=image'; },
      preview: openPreview
    };
  }

  return { STRINGS: STRINGS, CSS: CSS, create: create, kinds: kinds, accept: accept };
})();
