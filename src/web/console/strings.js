// Every text the console shows, in one place so it can be translated: a page may set
// `window.SwitchboardConsole = { strings: { ... } }` before the modules load.

const STRINGS = {
  title: 'Switchboard console',
  // Static texts of index.html (elements with data-i18n="key").
  username: 'Username',
  password: 'Password',
  login: 'Log in',
  status: 'Status',
  available: 'Available',
  away: 'Away',
  offline: 'Offline',
  navChats: 'Chats',
  navHistory: 'Past interactions',
  logout: 'Log out',
  offers: 'Offers',
  noOffers: 'No offers.',
  waiting: 'Waiting',
  noWaiting: 'Nobody is waiting.',
  inbox: 'Messages',
  noInbox: 'No messages.',
  pick: 'Pick',
  waitedSeconds: 'waiting {n} s',
  waitedMinutes: 'waiting {n} min',
  unverifiedEmail: '{email} (unverified)',
  claim: 'Claim',
  markDone: 'Done',
  claimedBy: 'Claimed by {name}',
  you: 'you',
  inboxError: 'Could not load the messages: {message}',
  setAwayMissed: 'You were set to Away because an offer timed out. Set yourself Available to get offers again.',
  chats: 'Chats',
  noChats: 'No open chats.',
  placeholder: 'Chats you accept open here.',
  refresh: 'Refresh',
  loginFailed: 'Wrong username or password.',
  loginError: 'Could not log in: {message}',
  connecting: 'Connecting…',
  connected: 'Connected',
  reconnecting: 'Reconnecting…',
  offerFrom: '{name} wants to chat',
  anonymous: 'Visitor',
  accept: 'Accept',
  deny: 'Deny',
  close: 'Close',
  closeConfirm: 'Close the request?',
  expiresIn: 'Expires in {s} s',
  expired: 'Expired',
  revoked: {
    timeout: 'Timed out',
    customer_rejected: 'Customer Rejected',
    closed: 'Closed',
    denied: 'Denied',
    accepted: 'Accepted',
    unroutable: 'Given to another agent (console was closed)'
  },
  queue: 'Queue: {queue}',
  notificationTitle: 'New chat request',
  joining: 'Joining…',
  active: 'Active',
  ended: 'Ended',
  input: 'Type a message',
  send: 'Send',
  end: 'End chat',
  endConfirm: 'End the chat?',
  you: 'You',
  sending: 'Sending…',
  failed: 'Not sent',
  messages: 'Messages',
  wrapupTitle: 'The chat has ended',
  wrapupReason: 'Reason: {reason}',
  create: 'Create interaction',
  add: 'Add to existing interaction',
  trash: 'Trash',
  addConfirm: 'Add to selected',
  noInteractions: 'No earlier interactions for this contact.',
  loadingInteractions: 'Loading interactions…',
  pickInteraction: 'Pick an interaction first.',
  deciding: 'Saving…',
  decided: 'Saved ({decision}).',
  gone: 'This chat is no longer available: {message}',
  noHistory: 'No interactions yet.',
  historySearch: 'Search',
  historyWords: 'Words in the chat',
  historyFilters: 'Filters',
  historyEmail: 'E-mail',
  historyName: 'Visitor name',
  historyAgent: 'Agent (username)',
  historyQueue: 'Queue',
  historyAnyQueue: 'Any queue',
  historyDecision: 'Decision',
  historyAnyDecision: 'Any decision',
  historyFrom: 'From',
  historyTo: 'To',
  historyEmpty: 'Unanswered, kept automatically',
  historyEmptyShow: 'Show',
  historyEmptyHide: 'Hide',
  historyEmptyOnly: 'Only these',
  historyMore: 'Load more',
  historyNoMatch: 'Nothing matches these filters.',
  historyNoName: 'No name',
  historyNoAgent: 'No agent',
  durationSeconds: '{n} s',
  durationMinutes: '{n} min',
  durationHours: '{h} h {m} min',
  interaction: '#{id} {subject}',
  autoKept: 'kept automatically',
  chatLabel: 'Chat {id}',
  decision: 'Decision: {decision}',
  endReason: 'Ended: {reason}',
  createdAt: 'Created {at}',
  loadFailed: 'Could not load: {message}',
  sessionExpired: 'Your session has expired. Please log in again.',
  // Links, pushed pages, files, typing, receipts
  pushed: 'Page opened for the visitor:',
  delivered: 'Delivered',
  read: 'Read',
  typing: 'The visitor is typing…',
  attach: 'Attach file',
  uploading: 'Uploading {name}…',
  uploadFailed: 'Could not send the file: {message}',
  linkButton: 'Link',
  linkUrl: 'URL (http or https)',
  linkTitle: 'Title (optional)',
  sendLink: 'Send link',
  pushPage: "Open on visitor's screen",
  badUrl: 'Enter an http or https address.',
  // Transfer
  transfer: 'Transfer',
  transferTo: 'Transfer to',
  transferChoose: 'Choose an agent or a queue…',
  transferAgents: 'Agents',
  transferQueues: 'Queues',
  transferAgentOption: '{name} · {status} · {load}/{max} chats',
  transferLoading: 'Loading agents and queues…',
  transferNote: 'Note for the next agent (the visitor does not see it)',
  transferSubmit: 'Transfer chat',
  transferCancel: 'Cancel',
  transferNeedOne: 'Choose an agent or a queue.',
  noteFrom: 'Note from {name}',
  transferring: 'Transferring…',
  transferred: 'The chat was transferred.',
  unverified: 'unverified',
  assigned: 'Transferred to you by {name}.',
  // New messages, the visitor panel
  messageFrom: 'New message from {name}',
  visitorAt: 'Visitor · {place}',
  soundOn: 'Sound on',
  soundOff: 'Sound off',
  panelTitle: 'Visitor',
  panelLoading: 'Loading visitor…',
  verified: 'verified',
  colBrowser: 'Browser',
  browserOn: '{browser} on {os}',
  earlier: 'Earlier interactions',
  // Canned responses
  cannedLabel: 'Canned responses',
  cannedNone: 'No canned response matches.',
  cannedFailed: 'Canned response: {message}',
  navCanned: 'Canned responses',
  cannedSearch: 'Search canned responses',
  cannedNew: 'New canned response',
  cannedEdit: 'Edit canned response',
  cannedTitle: 'Title',
  cannedShortcut: 'Shortcut (typed after "/")',
  cannedText: 'Text: {visitor_name}, {visitor_email} and {agent_name} are filled in',
  cannedScope: 'Who sees it',
  cannedPersonal: 'Only me',
  cannedShared: 'Everyone (admins only)',
  cannedSave: 'Save',
  cannedDelete: 'Delete',
  cannedSaved: 'Saved.',
  cannedDeleted: 'Deleted.',
  cannedEmpty: 'No canned responses yet.',
  // Site visitors
  navVisitors: 'Site visitors',
  newOnly: 'New visitors only',
  colEmail: 'E-mail',
  colPage: 'Current page',
  colCountry: 'Country',
  colIp: 'IP',
  colTime: 'Time on site',
  colChatting: 'Chatting',
  colActions: 'Actions',
  noVisitors: 'No visitors on the site right now.',
  visitorsCount: '({n})',
  yes: 'Yes',
  no: 'No',
  isNew: 'new',
  details: 'Details',
  startChat: 'Start chat',
  inviteMessage: 'Invitation message (optional)',
  pagesSeen: 'Pages ({n})',
  visitorsStale: 'The list changes faster than it can be shown here; it is read again every 30 seconds.',
  refreshNow: 'Refresh now',
  referrer: 'from {referrer}',
  visitorLeft: 'This visitor has left the site.',
  visitorPending: '…',
  closeDetails: 'Close',
  inviting: 'Invitation sent to {who}…',
  ratedGood: 'The visitor rated this chat: good',
  ratedBad: 'The visitor rated this chat: bad',
  ratedWithComment: '{rating} — “{comment}”',
  preview: 'Preview',
  closePreview: 'Close',
  previewUnavailable: 'no preview',
  inviteResult: {
    accepted: '{who} accepted: the chat is open.',
    declined: '{who} declined the invitation.',
    expired: 'The invitation to {who} expired.',
    gone: '{who} has left; the invitation is void.'
  },
  // Supervisors: the Monitor view (monitor.js) and whispers in transcripts.
  navMonitor: 'Monitor',
  internal: 'Whisper (internal)',
  monitorChats: 'Waiting and running chats',
  monitorAgents: 'Agents',
  monitorQueues: 'Queues',
  monitorTotal: '{shown} of {total}',
  monitorNoChats: 'No chats or requests right now.',
  colQueue: 'Queue',
  colVisitor: 'Visitor',
  colAgent: 'Agent',
  colState: 'State',
  colWaited: 'Waiting / running',
  colSilent: 'Visitor silent',
  colRating: 'Rating',
  colStatus: 'Status',
  colLoad: 'Load',
  colRole: 'Role',
  colWaiting: 'Waiting',
  colLongest: 'Longest wait',
  colAcceptedHour: 'Accepted (1 h)',
  colMedianAccept: 'Median to accept',
  colMissed: 'Missed offers (1 h)',
  monitorOpen: 'Open',
  monitorClose: 'Close',
  monitorReadOnly: 'Read-only: you see what the agent sees, whispers included.',
  whisperLabel: 'Whisper to the agent (the visitor never sees it)',
  whisperSend: 'Whisper',
  takeOver: 'Take over',
  takenOver: 'You took this chat over; it is in your Chats.',
  chatTakenOver: 'A supervisor took over one of your chats.',
  duration: '{m}:{s}'
};

const user = (window.SwitchboardConsole && window.SwitchboardConsole.strings) || {};

function merge(base, over) {
  const out = {};
  for (const k of Object.keys(base)) {
    const v = over[k];
    if (base[k] && typeof base[k] === 'object') out[k] = merge(base[k], v && typeof v === 'object' ? v : {});
    else out[k] = typeof v === 'string' ? v : base[k];
  }
  return out;
}

export const S = merge(STRINGS, user);

/** Puts the (possibly translated) texts into the page's static elements. */
export function translatePage(root = document) {
  for (const el of root.querySelectorAll('[data-i18n]')) {
    const v = S[el.getAttribute('data-i18n')];
    if (typeof v === 'string') el.textContent = v;
  }
  for (const el of root.querySelectorAll('[data-i18n-label]')) {
    const v = S[el.getAttribute('data-i18n-label')];
    if (typeof v === 'string') el.setAttribute('aria-label', v);
  }
  document.title = S.title;
}

/** `fmt('Expires in {s} s', {s: 3})` */
export function fmt(s, vars) {
  return s.replace(/\{(\w+)\}/g, (m, k) => (vars[k] != null ? String(vars[k]) : m));
}

/** A small element builder: attributes, `text` (textContent) and children. */
export function h(tag, attrs, children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === 'text') e.textContent = v;
    else if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children || []) if (c) e.appendChild(c);
  return e;
}

/**
 * Makes `button` ask before it acts: the first press changes its text to `question` for a few
 * seconds (`data-confirm="true"`), a second press within that time calls `act`. Keyboard and
 * screen readers get the same two steps; nothing blocks the page like `window.confirm`.
 */
export function twoStep(button, question, act, ms = 4000) {
  const label = button.textContent;
  let timer = null;
  const reset = () => {
    clearTimeout(timer);
    timer = null;
    button.textContent = label;
    button.removeAttribute('data-confirm');
  };
  button.addEventListener('click', () => {
    if (!timer) {
      button.textContent = question;
      button.setAttribute('data-confirm', 'true');
      timer = setTimeout(reset, ms);
      return;
    }
    reset();
    act();
  });
  return button;
}

export function formatDate(at) {
  if (typeof at !== 'number' || !isFinite(at)) return String(at ?? '');
  try {
    return new Date(at).toLocaleString();
  } catch (e) {
    return String(at);
  }
}
