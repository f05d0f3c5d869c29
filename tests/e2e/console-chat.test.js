// The agent console's chat view across two nodes: authorship after a transfer (the receiving
// agent never sees a colleague's messages as "You"), the header and "Transferred to you"
// after a transfer, the internal note the visitor never sees, who left and who joined;
// new-message alerts (badges, title count, a sound that can be muted, desktop notifications
// through a spy on window.Notification); tab previews and waiting times, long lines; the
// visitor panel (current page live, browser, earlier interactions opened with one click);
// and a proactive chat titled by its visitor.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startCluster, launchBrowser, eventually, sleep } = require('./harness');
const P = require('./pages');

const NOTE = 'Internal: refund already approved, ticket 5531';

let cluster, browser, A, B, ap1, ap2;

/** Counts desktop notifications and beeps of a page (spies installed before any script runs). */
function spies() {
  window.__notes = [];
  window.__beeps = 0;
  class SpyNotification {
    constructor(title, opts) {
      window.__notes.push({ title, body: (opts && opts.body) || '', tag: (opts && opts.tag) || '' });
    }
    close() {}
  }
  SpyNotification.permission = 'granted';
  SpyNotification.requestPermission = () => Promise.resolve('granted');
  window.Notification = SpyNotification;
  const Real = window.AudioContext;
  if (Real) {
    window.AudioContext = class extends Real {
      createOscillator() {
        window.__beeps++;
        return super.createOscillator();
      }
    };
  }
}

async function agentPage(node, agent) {
  const ctx = await browser.newContext({ viewport: { width: 1366, height: 768 } });
  await ctx.addInitScript(spies);
  const page = await P.newPage(ctx);
  await P.agentLogin(page, node, agent);
  await P.setStatus(page, 'available');
  return page;
}

/** Makes the console believe it is hidden (another browser tab in front), or visible again. */
async function setHidden(page, hidden) {
  await page.evaluate((hidden) => {
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => (hidden ? 'hidden' : 'visible') });
    document.dispatchEvent(new Event('visibilitychange'));
  }, hidden);
}

async function visitorPage() {
  return P.newPage(await browser.newContext({ viewport: { width: 1100, height: 760 } }));
}

const agentId = (page) => page.evaluate(() => JSON.parse(sessionStorage.getItem('sb.agent')).agent.id);

before(async () => {
  cluster = await startCluster({ name: 'console-chat', agents: 2 });
  [A, B] = cluster.nodes;
  browser = await launchBrowser();
  ap1 = await agentPage(B, cluster.agents[0]);
  ap2 = await agentPage(A, cluster.agents[1]);
});

after(async () => {
  if (browser) await browser.close();
  if (cluster) await cluster.stop();
});

test('a transfer: authorship from the entry, the header kept, the note for the agent only', async () => {
  await P.setStatus(ap2, 'away');
  const vp = await visitorPage();
  const chatId = await P.startChat(vp, ap1, A, { name: 'Nora', email: 'nora@example.com', question: 'My parcel is late' });
  await P.setStatus(ap2, 'available');
  const pane1 = P.chatPane(ap1, chatId);
  await P.agentSend(ap1, chatId, 'Hello from the first agent');
  const own = pane1.locator('[data-testid="message"][data-seq]').filter({ hasText: 'Hello from the first agent' });
  await own.waitFor({ timeout: P.T });
  assert.equal(await own.getAttribute('data-mine'), 'true');

  // The picker lists the other agent with status and load, and the queues.
  await pane1.getByTestId('chat-transfer').click();
  const target = pane1.getByTestId('chat-transfer-target');
  const second = await agentId(ap2);
  await target.locator(`option[value="agent:${second}"]:not([disabled])`).waitFor({ state: 'attached', timeout: P.T });
  assert.match(await target.locator(`option[value="agent:${second}"]`).textContent(), /Agent 2 · Available · 0\/3/);
  assert.equal(await target.locator('option[value="queue:general"]').count(), 1);
  await target.selectOption(`agent:${second}`);
  await pane1.getByTestId('chat-transfer-note').fill(NOTE);
  await pane1.getByTestId('chat-transfer-submit').click();
  await pane1.waitFor({ state: 'detached', timeout: P.T });

  const pane2 = P.chatPane(ap2, chatId);
  await ap2.locator(`[data-testid="chat-pane"][data-chat-id="${chatId}"][data-state="active"]`).waitFor({ timeout: P.T });
  // The first agent's message is theirs, not "You".
  const old = pane2.locator('[data-testid="message"][data-seq]').filter({ hasText: 'Hello from the first agent' });
  await old.waitFor({ timeout: P.T });
  assert.equal(await old.getAttribute('data-mine'), null);
  assert.match(await old.textContent(), /Agent 1/);
  assert.doesNotMatch(await old.textContent(), /You/);
  // The header keeps the visitor's e-mail and queue; "Transferred to you" once, with the note.
  await pane2.getByTestId('chat-sub').filter({ hasText: 'nora@example.com' }).waitFor({ timeout: P.T });
  assert.match(await pane2.getByTestId('chat-sub').textContent(), /general/);
  assert.equal(await pane2.getByTestId('chat-title').textContent(), 'Nora');
  await pane2.getByTestId('chat-handover').filter({ hasText: 'Transferred to you by Agent 1' }).waitFor({ timeout: P.T });
  assert.equal(await pane2.getByTestId('chat-handover-note').textContent(), NOTE);
  assert.equal((await ap2.locator('body').innerText()).split('Transferred to you by').length - 1, 1);
  await pane2.getByTestId('panel-transfer-note').filter({ hasText: NOTE }).waitFor({ timeout: P.T });

  // The visitor sees who left and who joined, never the note: live, and after a reload.
  const msgs = vp.getByTestId('sb-messages');
  await msgs.getByText('Agent 1 left the chat').waitFor({ timeout: P.T });
  await msgs.getByText('Agent 2 joined the chat').waitFor({ timeout: P.T });
  assert.doesNotMatch(await msgs.innerText(), /refund already approved/);
  await P.agentSend(ap2, chatId, 'Agent 2 here');
  const mine = pane2.locator('[data-testid="message"][data-seq]').filter({ hasText: 'Agent 2 here' });
  await mine.waitFor({ timeout: P.T });
  assert.equal(await mine.getAttribute('data-mine'), 'true');
  await vp.reload();
  if (!(await vp.getByTestId('sb-messages').isVisible())) await vp.getByTestId('sb-chat-button').click();
  await vp.getByTestId('sb-messages').getByText('Agent 2 here').waitFor({ timeout: P.T });
  await vp.getByTestId('sb-messages').getByText('Agent 1 left the chat').waitFor({ timeout: P.T });
  assert.doesNotMatch(await vp.locator('body').innerText(), /refund already approved/);
  assert.doesNotMatch(await vp.content(), /refund already approved/);

  // A reload of the console keeps who handed over, the note and the authorship.
  await ap2.reload();
  await pane2.getByTestId('chat-handover').filter({ hasText: 'Transferred to you by Agent 1' }).waitFor({ timeout: P.T });
  assert.equal(await pane2.getByTestId('chat-handover-note').textContent(), NOTE);
  const replayed = pane2.locator('[data-testid="message"][data-seq]').filter({ hasText: 'Hello from the first agent' });
  await replayed.waitFor({ timeout: P.T });
  assert.equal(await replayed.getAttribute('data-mine'), null);
  assert.equal(await pane2.locator('[data-testid="message"][data-mine="true"]').filter({ hasText: 'Agent 2 here' }).count(), 1);

  // The end takes "Transferred to you" away.
  await P.agentEnd(ap2, chatId);
  await pane2.getByTestId('chat-handover').waitFor({ state: 'hidden', timeout: P.T });
  await P.decide(ap2, chatId, 'trash');
  await vp.context().close();
  P.assertNoErrors(ap1, ap2);
});

test('new messages: badges, title count, a sound that can be muted, desktop notifications', async () => {
  await P.setStatus(ap2, 'away');
  const vp = await visitorPage();
  const chatId = await P.startChat(vp, ap1, A, { name: 'Otto', question: 'Hi' });
  await vp.getByTestId('sb-input').waitFor({ timeout: P.T });
  await P.chatPane(ap1, chatId).locator('[data-testid="message"]').filter({ hasText: 'Hi' }).first().waitFor({ timeout: P.T });
  await ap1.evaluate(() => {
    window.__notes.length = 0;
    window.__beeps = 0;
  });

  // Another view on screen: the chat is not in view.
  await ap1.getByTestId('nav-history').click();
  await P.visitorSend(vp, 'first unseen');
  const navBadge = ap1.getByTestId('nav-chats-unread');
  await navBadge.filter({ hasText: '1' }).waitFor({ timeout: P.T });
  assert.equal(await ap1.locator(`[data-testid="chat-tab"][data-chat-id="${chatId}"] [data-testid="chat-unread"]`).textContent(), '1');
  await eventually(async () => /^\(1\) /.test(await ap1.title()), { what: 'title count' });
  await eventually(async () => (await ap1.evaluate(() => window.__beeps)) > 0, { what: 'a beep' });
  // Visible console: no desktop notification.
  assert.equal(await ap1.evaluate(() => window.__notes.length), 0);

  // The console hidden behind another tab: a desktop notification naming the visitor.
  await setHidden(ap1, true);
  await P.visitorSend(vp, 'second unseen');
  await eventually(async () => (await ap1.evaluate(() => window.__notes.length)) === 1, { what: 'a desktop notification' });
  const note = await ap1.evaluate(() => window.__notes[0]);
  assert.match(note.title, /Otto/);
  assert.equal(note.body, 'second unseen');
  await navBadge.filter({ hasText: '2' }).waitFor({ timeout: P.T });
  assert.match(await ap1.title(), /^\(2\) /);

  // Muted: remembered over a reload, no beep, the notification still comes.
  await setHidden(ap1, false);
  await ap1.getByTestId('sound-toggle').click();
  assert.equal(await ap1.getByTestId('sound-toggle').getAttribute('aria-pressed'), 'false');
  await ap1.reload();
  await ap1.locator('[data-testid="conn-state"][data-state="open"]').waitFor({ timeout: P.T });
  assert.equal(await ap1.getByTestId('sound-toggle').getAttribute('aria-pressed'), 'false');
  assert.equal(await ap1.evaluate(() => localStorage.getItem('sb.console.sound')), 'off');
  await ap1.locator(`[data-testid="chat-pane"][data-chat-id="${chatId}"][data-state="active"]`).waitFor({ state: 'attached', timeout: P.T });
  await ap1.getByTestId('nav-history').click();
  await setHidden(ap1, true);
  await P.visitorSend(vp, 'third unseen');
  await eventually(async () => (await ap1.evaluate(() => window.__notes.length)) === 1, { what: 'a notification while muted' });
  await sleep(300);
  assert.equal(await ap1.evaluate(() => window.__beeps), 0);

  // Back to the chat: everything read, the title plain again.
  await setHidden(ap1, false);
  await ap1.getByTestId('nav-chats').click();
  await ap1.locator(`[data-testid="chat-tab"][data-chat-id="${chatId}"]`).click();
  await navBadge.waitFor({ state: 'hidden', timeout: P.T });
  await eventually(async () => !/^\(\d+\)/.test(await ap1.title()), { what: 'title without a count' });
  await ap1.getByTestId('sound-toggle').click();
  await P.agentEnd(ap1, chatId);
  await P.decide(ap1, chatId, 'trash');
  await vp.context().close();
  P.assertNoErrors(ap1);
});

test('chat tabs: last message, waiting time, long lines kept in their bubble', async () => {
  await P.setStatus(ap2, 'away');
  const vp = await visitorPage();
  const chatId = await P.startChat(vp, ap1, A, { name: 'Pia', question: 'Hello there' });
  await vp.getByTestId('sb-input').waitFor({ timeout: P.T });
  const tab = ap1.locator(`[data-testid="chat-tab"][data-chat-id="${chatId}"]`);
  await P.visitorSend(vp, 'Where is my order number 1042?');
  await tab.getByTestId('chat-preview').filter({ hasText: 'Where is my order number 1042?' }).waitFor({ timeout: P.T });
  await tab.getByTestId('chat-waiting').filter({ hasText: /waiting \d+ s/ }).waitFor({ timeout: P.T });
  await P.agentSend(ap1, chatId, 'Let me look');
  await tab.getByTestId('chat-preview').filter({ hasText: 'You: Let me look' }).waitFor({ timeout: P.T });
  await tab.getByTestId('chat-waiting').waitFor({ state: 'hidden', timeout: P.T });

  const long = `https://example.com/${'a'.repeat(400)}`;
  await P.visitorSend(vp, `${'x'.repeat(300)} and ${long}`);
  const pane = P.chatPane(ap1, chatId);
  const bubble = pane.locator('[data-testid="message"]').filter({ hasText: 'x'.repeat(50) });
  await bubble.waitFor({ timeout: P.T });
  const [b, log] = [await bubble.boundingBox(), await pane.getByTestId('message-list').boundingBox()];
  assert.ok(b.x + b.width <= log.x + log.width + 1, `bubble ${JSON.stringify(b)} inside ${JSON.stringify(log)}`);
  assert.ok(b.width <= 641, `bubble at most 640 px wide: ${b.width}`);
  const scroll = await pane.locator('.log-wrap').evaluate((e) => e.scrollWidth - e.clientWidth);
  assert.equal(scroll, 0, 'no horizontal scrolling');
  await P.shot(ap1, 'console-chat-tabs');
  await P.agentEnd(ap1, chatId);
  await P.decide(ap1, chatId, 'create');
  await vp.context().close();
  P.assertNoErrors(ap1);
});

test('the visitor panel: who, where now (live), browser, earlier interactions; a proactive chat titled by its visitor', async () => {
  await P.setStatus(ap2, 'away');
  const vp = await visitorPage();
  // A first chat, kept as an interaction.
  const first = await P.startChat(vp, ap1, A, { name: 'Quinn', email: 'quinn@example.com', question: 'First question' });
  await P.agentEnd(ap1, first);
  await P.decide(ap1, first, 'create');
  // A second chat of the same visitor.
  await vp.getByTestId('sb-new-chat').click();
  await P.requestChat(vp, { name: 'Quinn', email: 'quinn@example.com', question: 'Second question' });
  const chatId = await P.acceptOffer(ap1, 'Quinn');
  const panel = P.chatPane(ap1, chatId).getByTestId('visitor-panel');
  await panel.getByTestId('panel-name').filter({ hasText: 'Quinn' }).waitFor({ timeout: P.T });
  assert.equal(await panel.locator('[data-testid="panel-email"] [data-verified]').getAttribute('data-verified'), 'false');
  assert.match(await panel.getByTestId('panel-email').textContent(), /quinn@example\.com.*unverified/);
  assert.match(await panel.getByTestId('panel-ip').textContent(), /127\.0\.0\.1/);
  assert.match(await panel.getByTestId('panel-browser').textContent(), /Chrom/);
  assert.match(await panel.getByTestId('panel-page').textContent(), /\S/);
  // The visitor moves on: the panel follows.
  await vp.goto(`${A.url}/demo/pricing.html`);
  await panel.locator('[data-testid="panel-page"] a[href$="/demo/pricing.html"]').waitFor({ timeout: 20000 });
  await panel.locator('[data-testid="visitor-page"][data-url$="/demo/pricing.html"]').waitFor({ timeout: P.T });
  // The earlier interaction opens with one click.
  const earlier = panel.getByTestId('panel-interaction').filter({ hasText: 'First question' });
  await earlier.waitFor({ timeout: 20000 });
  await P.shot(ap1, 'console-visitor-panel');
  await earlier.click();
  await ap1.getByTestId('history-subject').filter({ hasText: 'First question' }).waitFor({ timeout: P.T });
  await ap1.getByTestId('nav-chats').click();
  await P.agentEnd(ap1, chatId);
  await P.decide(ap1, chatId, 'trash');

  // Invited later, the same visitor's chat is titled by their name and shows their e-mail.
  await ap1.getByTestId('nav-visitors').click();
  const quinn = ap1.getByTestId('visitor-row').filter({ has: ap1.locator('[data-testid="visitor-url"][title$="/demo/pricing.html"]') });
  await eventually(async () => (await quinn.getAttribute('data-chatting')) === 'false', { what: 'Quinn free to invite' });
  await quinn.getByTestId('visitor-invite').click();
  await vp.getByTestId('sb-invitation-accept').click();
  const invited = ap1.getByTestId('chat-tab').filter({ hasText: 'Quinn' });
  await invited.waitFor({ timeout: P.T });
  const iid = await invited.getAttribute('data-chat-id');
  const ipane = P.chatPane(ap1, iid);
  assert.equal(await ipane.getByTestId('chat-title').textContent(), 'Quinn');
  await ipane.getByTestId('chat-sub').filter({ hasText: 'quinn@example.com' }).waitFor({ timeout: P.T });
  await P.agentEnd(ap1, iid);
  await P.decide(ap1, iid, 'trash');

  // A proactive chat with a visitor who gave no name: titled "Visitor · place", not "Chat 1a2b…".
  const stranger = await visitorPage();
  await stranger.goto(`${A.url}/demo/contact.html?v=stranger`);
  await stranger.getByTestId('sb-chat-button').waitFor({ timeout: P.T });
  await ap1.getByTestId('nav-visitors').click();
  const row = ap1.getByTestId('visitor-row').filter({ has: ap1.locator('[data-testid="visitor-url"][title*="v=stranger"]') });
  await row.waitFor({ timeout: P.T });
  await row.getByTestId('visitor-invite').click();
  await stranger.getByTestId('sb-invitation-accept').click();
  const tab = ap1.getByTestId('chat-tab').filter({ hasText: 'Visitor ·' });
  await tab.waitFor({ timeout: P.T });
  assert.match(await tab.locator('.tab-label').textContent(), /^Visitor · 127\.0\.0\.1:\d+\/demo\/contact\.html$/);
  assert.doesNotMatch(await ap1.locator('body').innerText(), /Chat [0-9a-f]{8}/);
  const pid = await tab.getAttribute('data-chat-id');
  await P.agentEnd(ap1, pid);
  await P.decide(ap1, pid, 'trash');
  await vp.context().close();
  await stranger.context().close();
  P.assertNoErrors(ap1);
});
