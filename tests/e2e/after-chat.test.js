// The visitor's side around a chat, across two nodes (visitor on A, agent on B): the pane
// reopens at the newest entry after a navigation and after a pushed page; a waiting visitor sees
// their question and keeps writing (the agent gets it on accept); after the chat the visitor
// rates it (shown live to the agent, stored with the interaction) and has the transcript
// e-mailed (received by a real SMTP server started here); on a phone the pane is full-screen
// with 16 px inputs, and "Start a new chat" remembers name and e-mail.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { startCluster, launchBrowser, agentToken, getJson, eventually } = require('./harness');
const P = require('./pages');

let cluster, browser, A, B, ap, smtp, smtpDir, token;

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

/** Python's aiosmtpd on a loopback port, keeping what it receives in a Maildir. */
async function startSmtp(port) {
  smtpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-e2e-smtp-'));
  smtp = spawn('/usr/bin/python3', ['-m', 'aiosmtpd', '-n', '-l', `127.0.0.1:${port}`, '-c', 'aiosmtpd.handlers.Mailbox', path.join(smtpDir, 'box')], { stdio: 'ignore' });
  await eventually(() => new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => { s.end(); resolve(true); });
    s.on('error', () => resolve(false));
  }), { what: 'the SMTP server listening' });
}

function mails() {
  const dir = path.join(smtpDir, 'box', 'new');
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).map((f) => fs.readFileSync(path.join(dir, f), 'utf8'));
}

/** How far the widget's scroller is from its bottom, and whether it overflows at all. */
async function scrollGap(vp) {
  return vp.locator('.sb-body').evaluate((e) => ({ gap: e.scrollHeight - e.scrollTop - e.clientHeight, overflows: e.scrollHeight > e.clientHeight + 20 }));
}

async function atNewest(vp, what) {
  await eventually(async () => {
    const g = await scrollGap(vp);
    return g.overflows && g.gap <= 2;
  }, { what });
}

before(async () => {
  const port = await freePort();
  await startSmtp(port);
  cluster = await startCluster({
    name: 'after-chat',
    env: { SWITCHBOARD__MAIL__SMTP_URL: `smtp://127.0.0.1:${port}`, SWITCHBOARD__MAIL__FROM: 'chat@example.com', SWITCHBOARD__MAIL__TIMEOUT_MS: '3000' }
  });
  [A, B] = cluster.nodes;
  token = await agentToken(B, cluster.agents[0]);
  browser = await launchBrowser();
  ap = await P.newPage(await browser.newContext({ viewport: { width: 1366, height: 768 } }));
  await P.agentLogin(ap, B, cluster.agents[0]);
  await P.setStatus(ap, 'available');
});

after(async () => {
  if (browser) await browser.close();
  if (cluster) await cluster.stop();
  if (smtp) smtp.kill();
  if (smtpDir) fs.rmSync(smtpDir, { recursive: true, force: true });
});

test('after a navigation and after a pushed page the pane shows the newest entry', async () => {
  const vp = await P.newPage(await browser.newContext({ viewport: { width: 1280, height: 800 } }));
  const chatId = await P.startChat(vp, ap, A, { name: 'Nora', question: 'Long story' });
  for (let i = 1; i <= 25; i++) await P.agentSend(ap, chatId, `line ${i}`);
  await vp.getByTestId('sb-messages').locator('[data-seq]').filter({ hasText: 'line 25' }).waitFor({ timeout: P.T });
  await atNewest(vp, 'the newest entry in view while chatting');

  await vp.goto(`${A.url}/demo/pricing.html`);
  await vp.getByTestId('sb-messages').locator('[data-seq]').filter({ hasText: 'line 25' }).waitFor({ timeout: P.T });
  await atNewest(vp, 'the newest entry in view after a navigation');

  await P.agentSendUrl(ap, chatId, `${A.url}/demo/contact.html`, { push: true });
  await vp.waitForURL(/contact\.html/, { timeout: P.T });
  await vp.getByTestId('sb-messages').locator('[data-event="push_page"][data-seq]').waitFor({ timeout: P.T });
  await atNewest(vp, 'the newest entry in view after a pushed page');
  await P.shot(vp, 'widget-after-navigation');
  P.assertNoErrors(vp, ap);
  await P.agentEnd(ap, chatId);
  await P.decide(ap, chatId, 'trash');
  await vp.context().close();
});

test('a waiting visitor sees the question and keeps writing; the agent gets it on accept', async () => {
  const vp = await P.newPage(await browser.newContext({ viewport: { width: 1280, height: 800 } }));
  await P.openDemo(vp, A);
  await P.requestChat(vp, { name: 'Quinn', question: 'Where is my parcel?' });
  // On offer to the agent, not yet accepted: the visitor is still waiting.
  await P.offerCard(ap, 'Quinn').waitFor({ timeout: P.T });
  await vp.getByTestId('sb-question-echo').filter({ hasText: 'Where is my parcel?' }).waitFor({ timeout: P.T });
  await P.visitorSend(vp, 'It is order 42');
  await vp.getByTestId('sb-messages').locator('[data-pending="true"]').filter({ hasText: 'It is order 42' }).waitFor({ timeout: P.T });

  const chatId = await P.acceptOffer(ap, 'Quinn');
  const pane = P.chatPane(ap, chatId);
  const texts = pane.getByTestId('message-list').locator('[data-author="visitor"]');
  await texts.filter({ hasText: 'It is order 42' }).waitFor({ timeout: P.T });
  // The question opens the transcript, what was written while waiting follows it.
  const order = await texts.evaluateAll((els) => els.map((e) => e.textContent));
  assert.ok(order.findIndex((t) => t.includes('Where is my parcel?')) < order.findIndex((t) => t.includes('It is order 42')), order.join(' | '));
  await vp.getByTestId('sb-messages').locator('[data-seq][data-author="visitor"]').filter({ hasText: 'It is order 42' }).waitFor({ timeout: P.T });
  P.assertNoErrors(vp, ap);
  await P.agentEnd(ap, chatId);
  await P.decide(ap, chatId, 'trash');
  await vp.context().close();
});

test('after the chat: rated once (shown live and stored), transcript e-mailed to the pre-chat address', async () => {
  const vp = await P.newPage(await browser.newContext({ viewport: { width: 1280, height: 800 } }));
  const chatId = await P.startChat(vp, ap, A, { name: 'Rita', email: 'rita@example.com', question: 'Refund?' });
  await P.agentSend(ap, chatId, 'Refund is on its way');
  await vp.getByTestId('sb-messages').locator('[data-seq]').filter({ hasText: 'Refund is on its way' }).waitFor({ timeout: P.T });
  await P.agentEnd(ap, chatId);

  const box = vp.getByTestId('sb-after');
  await box.waitFor({ timeout: P.T });
  await vp.getByTestId('sb-rate-good').click();
  assert.equal(await vp.getByTestId('sb-rate-good').getAttribute('aria-pressed'), 'true');
  await vp.getByTestId('sb-rate-comment').fill('Quick <b>and</b> kind');
  await vp.getByTestId('sb-rate-send').click();
  await vp.getByTestId('sb-rate-done').filter({ hasText: 'Thank you' }).waitFor({ timeout: P.T });

  // The agent still has the chat open (wrap-up): the rating shows at once, as text.
  const rating = P.chatPane(ap, chatId).getByTestId('chat-rating');
  await rating.filter({ hasText: 'Quick <b>and</b> kind' }).waitFor({ timeout: P.T });
  assert.equal(await rating.getAttribute('data-rating'), 'good');

  await vp.getByTestId('sb-transcript-open').click();
  assert.equal(await vp.getByTestId('sb-transcript-email').inputValue(), 'rita@example.com');
  await vp.getByTestId('sb-transcript-send').click();
  await vp.getByTestId('sb-transcript-done').filter({ hasText: 'rita@example.com' }).waitFor({ timeout: P.T });
  const mail = await eventually(async () => mails().find((m) => m.includes('Refund is on its way')), { what: 'the transcript e-mail' });
  assert.match(mail, /To: rita@example\.com/);
  assert.match(mail, /Rita: Refund\?/);
  await P.shot(vp, 'widget-after-chat');

  // A navigation keeps what was done: no second rating form.
  await vp.reload();
  await vp.getByTestId('sb-rate-done').waitFor({ timeout: P.T });
  assert.equal(await vp.getByTestId('sb-rate-form').isVisible(), false);

  await P.decide(ap, chatId, 'create');
  const list = await getJson(B, `/api/interactions`, token);
  const items = Array.isArray(list) ? list : list.interactions;
  let stored = null;
  for (const i of items) {
    const d = await getJson(B, `/api/interactions/${i.id}`, token);
    stored = d.messages.find((m) => m.chat_id === chatId) || stored;
  }
  assert.ok(stored, 'the chat is stored');
  assert.equal(stored.rating.rating, 'good');
  assert.equal(stored.rating.comment, 'Quick <b>and</b> kind');
  // And in the console's history detail, as text.
  await ap.getByTestId('nav-history').click();
  await ap.getByTestId('history-list').locator(`[data-testid="history-item"][data-chat-id="${chatId}"]`).click();
  const past = ap.getByTestId('history-detail').getByTestId('history-rating');
  await past.filter({ hasText: 'Quick <b>and</b> kind' }).waitFor({ timeout: P.T });
  assert.equal(await past.getAttribute('data-rating'), 'good');
  await ap.getByTestId('nav-chats').click();
  P.assertNoErrors(vp, ap);
  await vp.context().close();
});

test('on a phone the pane is full-screen with 16 px inputs; a new chat remembers name and e-mail', async () => {
  const ctx = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const vp = await P.newPage(ctx);
  await P.openDemo(vp, A);
  await vp.getByTestId('sb-chat-button').click();
  const pane = vp.getByTestId('sb-pane');
  await pane.waitFor({ timeout: P.T });
  const box = await pane.boundingBox();
  assert.deepEqual([box.x, box.y, box.width, box.height], [0, 0, 390, 844]);
  for (const id of ['sb-name', 'sb-email', 'sb-question']) {
    assert.equal(await vp.getByTestId(id).evaluate((e) => getComputedStyle(e).fontSize), '16px', id);
  }
  await P.shot(vp, 'widget-phone');
  // The launcher is under the full-screen pane: the pane's own close button is the way out.
  assert.equal(await vp.getByTestId('sb-chat-button').isVisible(), false);
  await P.requestChat(vp, { name: 'Pia', email: 'pia@example.com', question: 'Hi from my phone' });
  const chatId = await P.acceptOffer(ap, 'Pia');
  assert.equal(await vp.getByTestId('sb-input').evaluate((e) => getComputedStyle(e).fontSize), '16px');
  await P.agentEnd(ap, chatId);
  await vp.getByTestId('sb-new-chat').click();
  assert.equal(await vp.getByTestId('sb-name').inputValue(), 'Pia');
  assert.equal(await vp.getByTestId('sb-email').inputValue(), 'pia@example.com');
  assert.equal(await vp.getByTestId('sb-question').inputValue(), '');
  await P.decide(ap, chatId, 'trash');
  P.assertNoErrors(vp, ap);
  await ctx.close();
});
