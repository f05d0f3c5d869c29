// The visitor's rating of a chat, shown in its pane when it arrives (`rated`, sent to the agent
// who had the chat while its console is open); past ones are in the interaction detail.

import { S, fmt, h } from './strings.js';

export function showRating(f) {
  const pane = document.querySelector(`[data-testid="chat-pane"][data-chat-id="${CSS.escape(String(f.chat_id))}"]`);
  if (!pane) return;
  let line = pane.querySelector('[data-testid="chat-rating"]');
  if (!line) {
    line = h('p', { class: 'pane-note rating', role: 'status', 'data-testid': 'chat-rating' });
    // Above the pane's body (transcript, composer, visitor panel), under its header and notes.
    pane.insertBefore(line, pane.querySelector(':scope > .pane-body'));
  }
  fillRating(line, f);
}

/** A stored rating (`GET /api/interactions/{id}`, per Message) as a line of the history detail. */
export function ratingLine(r) {
  const line = h('p', { class: 'pane-note rating', 'data-testid': 'history-rating' });
  fillRating(line, r);
  return line;
}

function fillRating(line, r) {
  line.setAttribute('data-rating', r.rating === 'good' ? 'good' : 'bad');
  const text = r.rating === 'good' ? S.ratedGood : S.ratedBad;
  line.textContent = r.comment ? fmt(S.ratedWithComment, { rating: text, comment: r.comment }) : text;
}
