// Engaging in a running chat: links (a hostile title stays inert), the typing indicator, read
// receipts, a pushed page that navigates the visitor (and is not followed again on a replay),
// and a transfer to a second agent who sees the whole history, then back to the queue.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startCluster, launchBrowser, eventually, sleep } = require('./harness');
const P = require('./pages');

const HOSTILE = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=1</script>';

let cluster, browser, A, B;
let ap, vp, chatId;

before(async () => {
  cluster = await startCluster({ name: 'engage', agents: 2 });
  [A, B] = cluster.nodes;
  browser = await launchBrowser();
  ({ ap, vp, chatId } = await P.runningChat(browser, { agentNode: B, agent: cluster.agents[0], visitorNode: A, visitor: { name: 'Linus', email: 'linus@example.com', question: 'Links please' } }));
});

after(async () => {
  if (browser) await browser.close();
  if (cluster) await cluster.stop();
});

const vMsgs = () => vp.getByTestId('sb-messages');

test('a titled link and a hostile link title are shown inertly on both sides', async () => {
  const pane = P.chatPane(ap, chatId);
  await P.agentSendUrl(ap, chatId, 'https://example.com/guide?a=1', { title: 'The guide' });
  await P.agentSendUrl(ap, chatId, 'https://example.org/x', { title: HOSTILE });

  const ok = vMsgs().locator('[data-event="link"]').filter({ hasText: 'The guide' });
  await ok.waitFor({ timeout: P.T });
  const a = ok.locator('a');
  assert.equal(await a.getAttribute('href'), 'https://example.com/guide?a=1');
  assert.equal(await a.textContent(), 'The guide');
  assert.equal(await a.getAttribute('rel'), 'noopener noreferrer');
  // Where it really goes is shown under the title.
  assert.match(await ok.textContent(), /https:\/\/example\.com\/guide\?a=1/);

  const bad = vMsgs().locator('[data-event="link"]').filter({ hasText: 'onerror' });
  await bad.waitFor({ timeout: P.T });
  assert.equal(await bad.locator('a').textContent(), HOSTILE);
  assert.equal(await bad.locator('a').getAttribute('href'), 'https://example.org/x');
  const agentBad = pane.locator('[data-event="link"][data-seq]').filter({ hasText: 'onerror' });
  await agentBad.waitFor({ timeout: P.T });
  assert.equal(await agentBad.locator('a').textContent(), HOSTILE);
  for (const root of [vMsgs(), pane.getByTestId('message-list')]) assert.equal(await root.locator('img, script').count(), 0);

  // Only http(s): the console refuses anything else before sending.
  await P.agentSendUrl(ap, chatId, 'javascript:alert(1)');
  await pane.getByTestId('chat-note').filter({ hasText: 'http or https' }).waitFor({ timeout: P.T });
  await sleep(300);
  assert.equal(await ap.evaluate(() => window.__pwned), undefined);
  assert.equal(await vp.evaluate(() => window.__pwned), undefined);
  assert.equal(await vMsgs().locator('[data-event="link"]').count(), 2);
  P.assertNoErrors(vp, ap);
});

test('the typing indicator shows on the other side and goes away', async () => {
  const pane = P.chatPane(ap, chatId);
  // Visitor types: the agent sees it.
  await vp.getByTestId('sb-input').pressSequentially('I am wri', { delay: 20 });
  await pane.getByTestId('chat-typing').filter({ hasText: 'typing' }).waitFor({ timeout: P.T });
  await vp.getByTestId('sb-input').pressSequentially('ting', { delay: 20 });
  await vp.getByTestId('sb-input').press('Enter');
  // The message replaces the indicator.
  await pane.getByTestId('message-text').filter({ hasText: 'I am writing' }).waitFor({ timeout: P.T });
  await pane.getByTestId('chat-typing').waitFor({ state: 'hidden', timeout: P.T });

  // Agent types: the visitor sees the agent's name.
  await pane.getByTestId('chat-input').pressSequentially('Just a sec', { delay: 20 });
  const typing = vp.getByTestId('sb-typing');
  await typing.filter({ hasText: 'Agent 1 is typing' }).waitFor({ timeout: P.T });
  await P.shot(vp, 'widget-typing');
  // Without further updates it hides after about 5 s (the stop frame may come first).
  await typing.waitFor({ state: 'hidden', timeout: 12000 });
  await pane.getByTestId('chat-input').fill('');
  P.assertNoErrors(vp, ap);
});

test('receipts: own messages show read when the other side has them on screen', async () => {
  const pane = P.chatPane(ap, chatId);
  await P.agentSend(ap, chatId, 'Did you get this?');
  const mine = pane.locator('[data-testid="message"][data-author="agent"][data-seq]').filter({ hasText: 'Did you get this?' });
  await mine.waitFor({ timeout: P.T });
  // The widget is open and the page visible: it reads at once.
  await mine.locator('[data-testid="receipt"][data-state="read"]').waitFor({ timeout: P.T });
  assert.equal(await mine.getByTestId('receipt').textContent(), '✓✓');

  await P.visitorSend(vp, 'Yes, got it');
  const theirs = vMsgs().locator('[data-testid="message"][data-author="visitor"][data-seq]').filter({ hasText: 'Yes, got it' });
  await theirs.locator('[data-testid="receipt"][data-state="read"]').waitFor({ timeout: P.T });
  // Earlier own messages are covered too.
  const first = vMsgs().locator('[data-testid="message"][data-author="visitor"][data-seq]').filter({ hasText: 'I am writing' });
  assert.equal(await first.locator('[data-testid="receipt"]').getAttribute('data-state'), 'read');

  // With the widget closed the agent's next message is only delivered.
  await vp.getByTestId('sb-close').click();
  await P.agentSend(ap, chatId, 'Closed the window?');
  const next = pane.locator('[data-testid="message"][data-author="agent"][data-seq]').filter({ hasText: 'Closed the window?' });
  await next.locator('[data-testid="receipt"][data-state="delivered"]').waitFor({ timeout: P.T });
  assert.equal(await next.getByTestId('receipt').textContent(), '✓');
  await vp.getByTestId('sb-chat-button').click();
  await next.locator('[data-testid="receipt"][data-state="read"]').waitFor({ timeout: P.T });
  P.assertNoErrors(vp, ap);
});

test('push page: the visitor is taken to the page and the chat survives; a replay does not push again', async () => {
  const pane = P.chatPane(ap, chatId);
  const target = `${A.url}/demo/contact.html`;
  await P.agentSendUrl(ap, chatId, target, { push: true });
  await vp.waitForURL(/contact\.html$/, { timeout: P.T });
  await vp.getByTestId('sb-pane').waitFor({ state: 'visible', timeout: P.T });
  const pushed = vMsgs().locator('[data-event="push_page"]');
  await pushed.waitFor({ timeout: P.T });
  assert.equal(await pushed.count(), 1);
  assert.equal(await pushed.locator('a').getAttribute('href'), target);
  await pane.locator('[data-event="push_page"][data-seq]').waitFor({ timeout: P.T });
  // The chat carries on both ways after the navigation.
  await P.visitorSend(vp, 'I am on the contact page');
  await pane.getByTestId('message-text').filter({ hasText: 'I am on the contact page' }).waitFor({ timeout: P.T });
  await P.agentSend(ap, chatId, 'Great, fill in the form');
  await vMsgs().locator('[data-author="agent"]').filter({ hasText: 'Great, fill in the form' }).waitFor({ timeout: P.T });
  await pane.locator('[data-author="agent"][data-seq]').filter({ hasText: 'Great, fill in the form' }).locator('[data-testid="receipt"][data-state="read"]').waitFor({ timeout: P.T });
  await P.shot(vp, 'widget-engage');
  await P.shot(ap, 'console-engage');

  // Navigating away again, and a fresh tab of the same visitor (full replay): no second push.
  await vp.getByTestId('nav-pricing').click();
  await vp.waitForURL(/pricing\.html$/);
  await vMsgs().locator('[data-event="push_page"]').waitFor({ timeout: P.T });
  await sleep(1500);
  assert.match(vp.url(), /pricing\.html$/);
  const tab2 = await P.newPage(vp.context());
  await tab2.goto(`${A.url}/demo/index.html`);
  await tab2.getByTestId('sb-chat-button').click();
  await tab2.getByTestId('sb-messages').locator('[data-event="push_page"]').waitFor({ timeout: P.T });
  await sleep(1500);
  assert.match(tab2.url(), /index\.html$/);
  await tab2.close();
  P.assertNoErrors(vp, ap);
});

test('transfer to a second agent: the chat moves with its history', async () => {
  const ap2 = await P.newPage(await browser.newContext({ viewport: { width: 1280, height: 800 } }));
  await P.agentLogin(ap2, A, cluster.agents[1]);
  await P.setStatus(ap2, 'available');
  const agent2Id = await ap2.evaluate(() => JSON.parse(sessionStorage.getItem('sb.agent')).agent.id);

  const pane = P.chatPane(ap, chatId);
  await pane.getByTestId('chat-transfer').click();
  await pane.getByTestId('chat-transfer-target').selectOption(`agent:${agent2Id}`);
  await P.shot(ap, 'console-transfer');
  await pane.getByTestId('chat-transfer-submit').click();

  // The second agent gets the tab, with everything said so far.
  const pane2 = P.chatPane(ap2, chatId);
  await pane2.waitFor({ timeout: P.T });
  await pane2.getByTestId('chat-handover').filter({ hasText: 'Transferred to you by Agent 1' }).waitFor({ timeout: P.T });
  await pane2.locator('[data-testid="message"][data-author="visitor"]').filter({ hasText: 'I am on the contact page' }).waitFor({ timeout: P.T });
  await ap2.locator(`[data-testid="chat-pane"][data-chat-id="${chatId}"][data-state="active"]`).waitFor({ timeout: P.T });
  // The first agent's tab closes.
  await pane.waitFor({ state: 'detached', timeout: P.T });

  // The visitor now talks to Agent 2.
  await vp.getByTestId('sb-status').filter({ hasText: 'Agent 2' }).waitFor({ timeout: P.T });
  await P.agentSend(ap2, chatId, 'Agent 2 here, hello');
  await vMsgs().locator('[data-author="agent"]').filter({ hasText: 'Agent 2 here, hello' }).waitFor({ timeout: P.T });
  await P.visitorSend(vp, 'Hi Agent 2');
  await pane2.getByTestId('message-text').filter({ hasText: 'Hi Agent 2' }).waitFor({ timeout: P.T });
  await P.shot(ap2, 'console-transferred');

  // Agent 2 hands it back to the queue: it is offered to someone else (not Agent 2).
  const p2 = P.chatPane(ap2, chatId);
  await p2.getByTestId('chat-transfer').click();
  await p2.getByTestId('chat-transfer-target').selectOption('queue:general');
  await p2.getByTestId('chat-transfer-submit').click();
  await p2.waitFor({ state: 'detached', timeout: P.T });
  const card = ap.locator(`[data-testid="offer"][data-chat-id="${chatId}"]`);
  await card.waitFor({ timeout: P.T });
  assert.match(await card.getByTestId('offer-name').textContent(), /Linus/);
  await card.getByTestId('offer-accept').click();
  await ap.locator(`[data-testid="chat-pane"][data-chat-id="${chatId}"][data-state="active"]`).waitFor({ timeout: P.T });
  await P.chatPane(ap, chatId).getByTestId('message-text').filter({ hasText: 'Hi Agent 2' }).waitFor({ timeout: P.T });
  await vp.getByTestId('sb-status').filter({ hasText: 'Agent 1' }).waitFor({ timeout: P.T });

  await P.agentEnd(ap, chatId);
  await P.decide(ap, chatId, 'trash');
  P.assertNoErrors(vp, ap, ap2);
});
