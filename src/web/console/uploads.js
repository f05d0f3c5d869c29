// Files in a chat pane. Sending: the body goes to the node as is, with the agent token; the
// node answers with a refusal the agent can read, or stores the file and writes its entry. A
// file dropped on the pane or pasted into the composer is sent the same way. PNG/JPEG/GIF/WebP
// files get a thumbnail (loaded through a signed, short-lived link with `view=image`, so no URL
// carries the token) and a click on it previews the image large. SVG and every other type stay
// download links.

import { S, fmt, h } from './strings.js';
import { api, getToken } from './api.js';

/** Uploads `f` into chat `chatId`; note(text) shows progress and failures. */
export async function upload(chatId, f, note) {
  note(fmt(S.uploading, { name: f.name }));
  try {
    const res = await fetch(`/api/chats/${encodeURIComponent(chatId)}/files?name=${encodeURIComponent(f.name)}`, {
      method: 'POST',
      headers: { 'Content-Type': f.type || 'application/octet-stream', Authorization: `Bearer ${getToken()}` },
      body: f,
      credentials: 'omit'
    });
    if (!res.ok) {
      let message = `HTTP ${res.status}`;
      try {
        message = (await res.json()).message || message;
      } catch (e) {
        /* not JSON */
      }
      throw new Error(message);
    }
    note('');
  } catch (e) {
    note(fmt(S.uploadFailed, { message: e.message }));
  }
}

/** Drop on `pane` and paste into `input` call `upload(file)`. */
export function bindUploads(pane, input, upload) {
  let depth = 0;
  const hasFiles = (e) => e.dataTransfer && Array.from(e.dataTransfer.types || []).includes('Files');
  pane.addEventListener('dragenter', (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    depth++;
    pane.classList.add('dropping');
  });
  pane.addEventListener('dragover', (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = 'copy';
  });
  pane.addEventListener('dragleave', () => {
    if (--depth <= 0) {
      depth = 0;
      pane.classList.remove('dropping');
    }
  });
  pane.addEventListener('drop', (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    depth = 0;
    pane.classList.remove('dropping');
    if (e.dataTransfer.files[0]) upload(e.dataTransfer.files[0]);
  });
  input.addEventListener('paste', (e) => {
    const files = e.clipboardData && e.clipboardData.files;
    if (!files || !files.length) return;
    e.preventDefault();
    upload(files[0]);
  });
}

/** `SbTranscript` option: sets the thumbnail's source to a signed inline-image link. */
export function fileThumb(d, img) {
  api(`/api/files/${encodeURIComponent(d.id)}/link`, { method: 'POST' })
    .then((link) => {
      img.src = `${link.url}&view=image`;
    })
    .catch(() => {
      img.alt = `${d.name || ''} (${S.previewUnavailable})`;
    });
}

let overlay = null;

/** `SbTranscript` option: shows the image large until Escape, a click outside or Close. */
export function filePreview(d, src) {
  const opener = document.activeElement;
  if (!overlay) {
    const img = h('img', { alt: '', 'data-testid': 'preview-image' });
    const close = h('button', { type: 'button', class: 'preview-close', 'data-testid': 'preview-close', text: S.closePreview });
    overlay = h('div', { class: 'preview', role: 'dialog', 'aria-modal': 'true', 'aria-label': S.preview, 'data-testid': 'preview', hidden: true }, [close, img]);
    const hide = () => {
      overlay.hidden = true;
      img.removeAttribute('src');
      if (overlay.opener && overlay.opener.focus) overlay.opener.focus();
    };
    close.addEventListener('click', hide);
    overlay.addEventListener('click', (e) => {
      if (e.target === overlay) hide();
    });
    overlay.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') {
        e.preventDefault();
        hide();
      }
    });
    document.body.appendChild(overlay);
  }
  overlay.opener = opener;
  const img = overlay.querySelector('img');
  img.src = src;
  img.alt = d.name || '';
  overlay.hidden = false;
  overlay.querySelector('button').focus();
}
