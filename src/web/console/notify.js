// How the console gets the agent's attention, for offers and new messages alike: a count in
// the page title, a short beep (muted with the sound toggle, remembered in localStorage) and a
// desktop notification while the console is not on screen, when the browser permits them.

import { S } from './strings.js';

const SOUND_KEY = 'sb.console.sound';
const counts = new Map();
let audio = null;

/** Whether sounds are on (the default) on this browser. */
export function soundOn() {
  try {
    return localStorage.getItem(SOUND_KEY) !== 'off';
  } catch (e) {
    return true;
  }
}

export function setSound(on) {
  try {
    localStorage.setItem(SOUND_KEY, on ? 'on' : 'off');
  } catch (e) {
    /* this page only */
  }
}

/** A short two-tone beep with WebAudio; silent when muted or when the browser refuses. */
export function beep() {
  if (!soundOn()) return;
  try {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return;
    audio = audio || new Ctx();
    const now = audio.currentTime;
    [880, 1175].forEach((freq, i) => {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.0001, now + i * 0.18);
      gain.gain.exponentialRampToValueAtTime(0.2, now + i * 0.18 + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, now + i * 0.18 + 0.16);
      osc.connect(gain);
      gain.connect(audio.destination);
      osc.start(now + i * 0.18);
      osc.stop(now + i * 0.18 + 0.17);
    });
  } catch (e) {
    /* no sound is fine */
  }
}

/** Asks for notification permission; call from a click (browsers require a gesture). */
export function askNotificationPermission() {
  try {
    if ('Notification' in window && Notification.permission === 'default') Notification.requestPermission();
  } catch (e) {
    /* unsupported */
  }
}

/**
 * Tells the agent something arrived: a beep, and a desktop notification (title, body, tag)
 * while the console is hidden and notifications are permitted. A click on it brings the
 * console forward and calls `onClick`.
 */
export function alertAgent({ title, body, tag, onClick }) {
  beep();
  try {
    if (!('Notification' in window) || Notification.permission !== 'granted' || document.visibilityState === 'visible') return;
    const n = new Notification(title, { body: String(body || '').slice(0, 200), tag });
    n.onclick = () => {
      window.focus();
      if (onClick) onClick();
      n.close();
    };
  } catch (e) {
    /* the beep is enough */
  }
}

/** Sets one source's count (offers, unread messages); the title shows their sum. */
export function setTitleCount(source, n) {
  counts.set(source, n);
  let total = 0;
  for (const v of counts.values()) total += v;
  document.title = total ? `(${total}) ${S.title}` : S.title;
}
