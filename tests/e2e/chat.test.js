// Reactive chats from the demo site (node A) to the console (node B): messages both ways,
// links, inert hostile text, and each wrap-up decision checked through the HTTP API.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startCluster, launchBrowser, agentToken, getJson, eventually, sleep } = require('./harness');
const P = require('./pages');

const HOSTILE = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=1</script>';

let cluster, browser, A, B, agent, token;
let agentPage, visitorCtx, visitorPage;
let createdInteraction = null;

before(async () => {
  cluster = await startCluster({ name: 'chat' });
  [A, B] = cluster.nodes;
  agent = cluster.agents[0];
  token = await agentToken(B, agent);
  browser = await launchBrowser();
  const agentCtx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  agentPage = await P.newPage(agentCtx);
  await P.agentLogin(agentPage, B, agent);
  await P.setStatus(agentPage, 'available');
  visitorCtx = await browser.newContext({ viewport: { width: 1100, height: 760 } });
  visitorPage = await P.newPage(visitorCtx);
});

after(async () => {
  if (browser) await browser.close();
  if (cluster) await cluster.stop();
});

async function interactionOf(chatId) {
  const list = await getJson(B, '/api/interactions?limit=50', token);
  for (const it of list) {
    const detail = await getJson(B, `/api/interactions/${it.id}`, token);
    const m = (detail.messages || []).find((x) => x.chat_id === chatId);
    if (m) return { interaction: detail.interaction, message: m, messages: detail.messages };
  }
  return null;
}

test('messages both ways, links, then "Create interaction"', async () => {
  const vp = visitorPage;
  const ap = agentPage;
  await P.openDemo(vp, A);
  await P.requestChat(vp, { name: 'Alice', email: 'alice@example.com', question: 'Do you ship to Mars?' });

  const card = P.offerCard(ap, 'Alice');
  await card.waitFor({ timeout: P.T });
  assert.match(await card.getByTestId('offer-question').textContent(), /Do you ship to Mars\?/);
  // A typed e-mail proves nothing about who asks: shown as unverified.
  assert.equal(await card.getByTestId('offer-email').textContent(), 'alice@example.com (unverified)');
  assert.equal(await card.getByTestId('offer-email').getAttribute('data-verified'), 'false');
  assert.match(await card.getByTestId('offer-countdown').textContent(), /\d+ s|Expired/);
  const chatId = await P.acceptOffer(ap, 'Alice');

  await vp.getByTestId('sb-status').filter({ hasText: 'Agent 1' }).waitFor({ timeout: P.T });
  const pane = P.chatPane(ap, chatId);
  await pane.getByTestId('message-text').filter({ hasText: 'Do you ship to Mars?' }).waitFor({ timeout: P.T });

  await P.visitorSend(vp, 'Hello, see https://example.com/docs.');
  const msg = pane.locator('[data-testid="message"][data-author="visitor"]').filter({ hasText: 'Hello, see' });
  await msg.waitFor({ timeout: P.T });
  assert.equal(await msg.getByTestId('message-text').textContent(), 'Hello, see https://example.com/docs.');
  const link = msg.locator('a');
  assert.equal(await link.getAttribute('href'), 'https://example.com/docs');
  assert.equal(await link.getAttribute('rel'), 'noopener noreferrer');
  assert.equal(await link.getAttribute('target'), '_blank');

  await P.agentSend(ap, chatId, 'Hi Alice, yes we do.');
  await vp.getByTestId('sb-messages').locator('[data-author="agent"]').filter({ hasText: 'Hi Alice, yes we do.' }).waitFor({ timeout: P.T });
  // The visitor's own message is shown once, acknowledged (not pending).
  await eventually(async () => (await vp.locator('[data-testid="message"][data-pending]').count()) === 0, { what: 'acks' });
  const entries = await P.visitorEntries(vp);
  assert.equal(entries.filter((e) => e.text.startsWith('Hello, see')).length, 1);

  await P.shot(vp, 'widget-chat');
  await P.shot(ap, 'console-chat');

  await P.agentEnd(ap, chatId);
  await vp.getByTestId('sb-ended').waitFor({ timeout: P.T });
  await P.shot(ap, 'console-wrapup');
  await P.decide(ap, chatId, 'create');

  const found = await eventually(() => interactionOf(chatId), { what: 'the created interaction' });
  assert.equal(found.message.decision, 'create');
  const texts = found.message.entries.map((e) => e.text);
  assert.ok(texts.includes('Hello, see https://example.com/docs.'), texts.join(' | '));
  assert.ok(texts.includes('Hi Alice, yes we do.'));
  createdInteraction = found.interaction.id;

  // The past-interactions viewer shows it.
  await ap.getByTestId('nav-history').click();
  await ap.locator(`[data-testid="history-item"][data-id="${createdInteraction}"]`).click();
  await ap.getByTestId('history-message').filter({ hasText: 'Hi Alice, yes we do.' }).waitFor({ timeout: P.T });
  await P.shot(ap, 'console-history');
  await ap.getByTestId('nav-chats').click();
  P.assertNoErrors(vp, ap);
});

test('the same visitor again: "Add to existing interaction"', async () => {
  assert.ok(createdInteraction, 'needs the interaction of the first test');
  const vp = visitorPage;
  const ap = agentPage;
  await P.requestChat(vp, { name: 'Alice', email: 'alice@example.com', question: 'A follow-up question' });
  const chatId = await P.acceptOffer(ap, 'Alice');
  await P.visitorSend(vp, 'Second chat here');
  await P.chatPane(ap, chatId).getByTestId('message-text').filter({ hasText: 'Second chat here' }).waitFor({ timeout: P.T });
  // This time the visitor ends it.
  await vp.getByTestId('sb-end').click();
  await vp.getByTestId('sb-ended').waitFor({ timeout: P.T });
  const pane = P.chatPane(ap, chatId);
  await pane.getByTestId('wrapup').waitFor({ timeout: P.T });
  await P.decide(ap, chatId, 'add', createdInteraction);

  const found = await eventually(async () => {
    const f = await interactionOf(chatId);
    return f && f.interaction.id === createdInteraction ? f : null;
  }, { what: 'the chat added to the interaction' });
  assert.equal(found.message.decision, 'add');
  assert.equal(found.messages.length, 2);
  P.assertNoErrors(vp, ap);
});

test('"Trash": the transcript joins no interaction', async () => {
  const vp = visitorPage;
  const ap = agentPage;
  const before = await getJson(B, '/api/interactions?limit=50', token);
  await P.requestChat(vp, { name: 'Alice', question: 'Please ignore this one' });
  const chatId = await P.acceptOffer(ap, 'Alice');
  await P.visitorSend(vp, 'spam spam spam');
  await P.chatPane(ap, chatId).getByTestId('message-text').filter({ hasText: 'spam spam spam' }).waitFor({ timeout: P.T });
  await P.agentEnd(ap, chatId);
  await P.decide(ap, chatId, 'trash');
  await sleep(2000); // give the flush time to (wrongly) create something
  const afterList = await getJson(B, '/api/interactions?limit=50', token);
  assert.deepEqual(afterList.map((i) => i.id).sort(), before.map((i) => i.id).sort());
  assert.equal(await interactionOf(chatId), null);
  P.assertNoErrors(vp, ap);
});

test('hostile text is shown literally and never runs', async () => {
  const ap = agentPage;
  const ctx = await browser.newContext();
  const vp = await P.newPage(ctx);
  try {
    await P.openDemo(vp, A);
    await P.requestChat(vp, { name: 'Mallory <img src=x onerror="window.__pwned=1">', question: HOSTILE });
    const card = P.offerCard(ap, 'Mallory');
    await card.waitFor({ timeout: P.T });
    assert.equal(await card.getByTestId('offer-question').textContent(), HOSTILE);
    assert.match(await card.getByTestId('offer-name').textContent(), /<img src=x/);
    const chatId = await P.acceptOffer(ap, 'Mallory');
    await P.visitorSend(vp, HOSTILE);
    const pane = P.chatPane(ap, chatId);
    const msg = pane.locator('[data-testid="message"][data-author="visitor"]').filter({ hasText: 'onerror' });
    await eventually(async () => (await msg.count()) === 2, { what: 'question and message' });
    for (const t of await msg.getByTestId('message-text').allTextContents()) assert.equal(t, HOSTILE);
    assert.equal(await pane.locator('img, script').count(), 0);
    assert.equal(await ap.locator('[data-testid="offers"] img').count(), 0);

    await P.agentSend(ap, chatId, HOSTILE);
    const back = vp.getByTestId('sb-messages').locator('[data-author="agent"]').filter({ hasText: 'onerror' });
    await back.waitFor({ timeout: P.T });
    assert.equal(await back.getByTestId('message-text').textContent(), HOSTILE);
    assert.equal(await vp.getByTestId('sb-messages').locator('img, script').count(), 0);

    await sleep(300);
    assert.equal(await ap.evaluate(() => window.__pwned), undefined);
    assert.equal(await vp.evaluate(() => window.__pwned), undefined);
    await P.shot(ap, 'console-hostile');

    await P.agentEnd(ap, chatId);
    await P.decide(ap, chatId, 'trash');
    P.assertNoErrors(vp, ap);
  } finally {
    await ctx.close();
  }
});

test('logging out ends the session on the node: the other tab, on the other node, is signed out too', async () => {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  try {
    const other = await P.newPage(ctx);
    await P.agentLogin(other, A, agent);
    const before = await fetch(`${A.url}/api/agent/me`, { headers: { Authorization: `Bearer ${token}` } });
    assert.equal(before.status, 200);
    await agentPage.locator('#logout').click();
    await agentPage.getByTestId('login-username').waitFor({ timeout: P.T });
    // The tab on node A lost its socket (4401), found its session over and shows the login.
    await other.getByTestId('login-error').filter({ hasText: 'session has expired' }).waitFor({ timeout: P.T });
    for (const node of [A, B]) {
      const r = await fetch(`${node.url}/api/agent/me`, { headers: { Authorization: `Bearer ${token}` } });
      assert.equal(r.status, 403);
    }
    P.assertNoErrors(other);
  } finally {
    await ctx.close();
  }
});
