// Sending a file into a chat: the body goes to the node as is, with the agent token; the node
// answers with a refusal the agent can read, or stores the file and writes its entry.

import { S, fmt } from './strings.js';
import { getToken } from './api.js';

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
