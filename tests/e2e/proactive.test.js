// Site visitors and proactive chat: the agent's live list of people browsing the demo site on
// the other node (current page, page history, the "new visitors only" filter), and invitations
// the visitor accepts (the chat opens on both sides) or declines (the agent is told).
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startCluster, launchBrowser, eventually } = require('./harness');
const P = require('./pages');

let cluster, browser, A, B, ap;
let missing = null; // set when the node does not serve these features: the tests then fail

before(async () => {
  // Invitations expire after 6 s here, so the expiry can be watched.
  cluster = await startCluster({ name: 'proactive', env: { SWITCHBOARD__CHAT__INVITATION_TIMEOUT_MS: '6000' } });
  [A, B] = cluster.nodes;
  browser = await launchBrowser();
  ap = await P.newPage(await browser.newContext({ viewport: { width: 1400, height: 820 } }));
  await P.agentLogin(ap, B, cluster.agents[0]);
  await P.setStatus(ap, 'available');
  const token = await P.consoleToken(ap);
  const r = await P.probeFrame(ap, `/ws/agent?token=${encodeURIComponent(token)}`, { type: 'watch_visitors' }, ['visitors_snapshot']);
  if (r.type !== 'visitors_snapshot') missing = `the node does not answer watch_visitors yet (${r.type}: ${r.message || ''})`;
});

after(async () => {
  if (browser) await browser.close();
  if (cluster) await cluster.stop();
});

/** A visitor browsing the demo site on node A, marked by a query string. */
async function browse(tag, file = 'index.html') {
  const page = await P.newPage(await browser.newContext({ viewport: { width: 1100, height: 760 } }));
  await page.goto(`${A.url}/demo/${file}?v=${tag}`);
  await page.getByTestId('sb-chat-button').waitFor({ timeout: P.T });
  return page;
}

function row(tag) {
  return ap.getByTestId('visitor-row').filter({ has: ap.locator(`[data-testid="visitor-url"][title*="v=${tag}"]`) });
}

async function showVisitors() {
  await ap.getByTestId('nav-visitors').click();
  await ap.getByTestId('visitors-table').waitFor({ timeout: P.T });
}

test('site visitors: the list follows visitors on the other node, with page history, leave and the new-visitor filter', async (t) => {
  if (missing) throw new Error(missing);
  await showVisitors();
  // A customer chats once (the chat is kept, so the contact is stored), then leaves the site.
  const known = await browse('known');
  const k = row('known');
  await k.waitFor({ timeout: P.T });
  assert.equal(await k.getAttribute('data-new'), 'true');
  await P.requestChat(known, { name: 'Karl', email: 'karl@example.com', question: 'Hello' });
  await ap.getByTestId('nav-chats').click();
  const chatId = await P.acceptOffer(ap, 'Karl');
  await P.agentEnd(ap, chatId);
  await P.decide(ap, chatId, 'create');
  await showVisitors();
  await eventually(async () => (await k.getAttribute('data-chatting')) === 'false', { what: 'chat over in the list' });
  const ctx = known.context();
  await known.close();
  // The visit ends after the grace period: the row goes.
  await k.waitFor({ state: 'detached', timeout: 30000 });

  // Back on the site with the same browser: a new visit of a known visitor.
  const back = await P.newPage(ctx);
  await back.goto(`${A.url}/demo/index.html?v=known`);
  await k.waitFor({ timeout: P.T });
  assert.equal(await k.getAttribute('data-new'), 'false');

  // A first-time visitor: the row follows their pages, the details keep the history.
  const fresh = await browse('fresh');
  const r = row('fresh');
  await r.waitFor({ timeout: P.T });
  assert.equal(await r.getAttribute('data-new'), 'true');
  assert.notEqual(await r.getByTestId('visitor-ip').textContent(), '');
  assert.match(await r.getByTestId('visitor-time').textContent(), /^\d+:\d\d/);
  assert.equal(await r.getAttribute('data-chatting'), 'false');
  // Each page reports itself once its widget is connected: wait for the list to follow.
  const vid = await r.getAttribute('data-visitor-id');
  const r2 = ap.locator(`[data-testid="visitor-row"][data-visitor-id="${vid}"]`);
  const on = (file) => r2.locator(`[data-testid="visitor-url"][title*="${file}"]`);
  await fresh.getByTestId('nav-pricing').click();
  await on('/demo/pricing.html').waitFor({ timeout: P.T });
  await fresh.goto(`${A.url}/demo/contact.html?v=fresh`);
  await on('/demo/contact.html?v=fresh').waitFor({ timeout: P.T });
  await r2.waitFor({ timeout: P.T });
  await r2.getByTestId('visitor-details').click();
  const pages = ap.getByTestId('visitor-detail').getByTestId('visitor-page');
  await eventually(async () => (await pages.count()) >= 3, { what: 'three pages in the history' }).catch(async (e) => {
    throw new Error(`${e.message}: ${JSON.stringify(await pages.evaluateAll((els) => els.map((x) => x.getAttribute('data-url'))))}`);
  });
  const urls = await pages.evaluateAll((els) => els.map((e) => e.getAttribute('data-url')));
  assert.match(urls[0], /index\.html\?v=fresh$/);
  assert.match(urls[1], /pricing\.html$/);
  assert.match(urls[2], /contact\.html\?v=fresh$/);
  // The link click sent a referrer.
  assert.match(await pages.nth(1).textContent(), /from http:\/\/127\.0\.0\.1:\d+\/demo\/index\.html\?v=fresh/);
  await P.shot(ap, 'console-visitors');

  // "New visitors only" hides the returning customer.
  await ap.getByTestId('visitors-new-only').check();
  await k.waitFor({ state: 'detached', timeout: P.T });
  assert.equal(await r2.count(), 1);
  await ap.getByTestId('visitors-new-only').uncheck();
  await k.waitFor({ timeout: P.T });
  await ctx.close();
  await fresh.context().close();
  P.assertNoErrors(ap);
});

test('proactive chat accepted with the keyboard: the chat opens on both sides', async (t) => {
  if (missing) throw new Error(missing);
  const vp = await browse('invited');
  await showVisitors();
  const r = row('invited');
  await r.waitFor({ timeout: P.T });
  await r.getByTestId('visitor-details').click();
  await ap.getByTestId('visitor-invite-message').fill('Can I help you find a widget? <b>no tags</b>');
  await ap.getByTestId('visitor-invite-send').click();

  const inv = vp.getByTestId('sb-invitation');
  await inv.waitFor({ state: 'visible', timeout: P.T });
  assert.match(await vp.getByTestId('sb-invitation-text').textContent(), /Agent 1/);
  assert.equal(await vp.getByTestId('sb-invitation-message').textContent(), 'Can I help you find a widget? <b>no tags</b>');
  await P.shot(vp, 'widget-invitation');
  // Keyboard: Tab reaches the buttons; Enter accepts.
  await vp.getByTestId('sb-invitation-accept').focus();
  await vp.keyboard.press('Enter');
  await inv.waitFor({ state: 'hidden', timeout: P.T });
  await vp.getByTestId('sb-pane').waitFor({ state: 'visible', timeout: P.T });
  await vp.getByTestId('sb-input').waitFor({ timeout: P.T });

  // The agent's console opens the chat.
  const tab = ap.getByTestId('chat-tab').first();
  await tab.waitFor({ timeout: P.T });
  const chatId = await tab.getAttribute('data-chat-id');
  await ap.locator(`[data-testid="chat-pane"][data-chat-id="${chatId}"][data-state="active"]`).waitFor({ timeout: P.T });
  await P.visitorSend(vp, 'Yes, I need a blue one');
  await P.chatPane(ap, chatId).getByTestId('message-text').filter({ hasText: 'I need a blue one' }).waitFor({ timeout: P.T });
  await P.agentSend(ap, chatId, 'Blue ones are on the pricing page');
  await vp.getByTestId('sb-messages').locator('[data-author="agent"]').filter({ hasText: 'Blue ones' }).waitFor({ timeout: P.T });
  // The list marks the visitor as chatting.
  await showVisitors();
  await eventually(async () => (await row('invited').getAttribute('data-chatting')) === 'true', { what: 'chatting in the list' });
  if (!(await ap.getByTestId('visitor-detail').isVisible())) await row('invited').getByTestId('visitor-details').click();
  await ap.getByTestId('visitor-detail').getByTestId('visitor-page').first().waitFor({ timeout: P.T });
  await P.shot(ap, 'console-visitors-chatting');
  await P.shot(vp, 'widget-invited-chat');
  await ap.getByTestId('nav-chats').click();
  await P.agentEnd(ap, chatId);
  await P.decide(ap, chatId, 'trash');
  P.assertNoErrors(vp, ap);
});

test('proactive chat declined: the agent sees the result', async (t) => {
  if (missing) throw new Error(missing);
  const vp = await browse('declines');
  await showVisitors();
  const r = row('declines');
  await r.waitFor({ timeout: P.T });
  await r.getByTestId('visitor-invite').click();
  await ap.getByTestId('invite-result').filter({ hasText: 'Invitation sent' }).waitFor({ timeout: P.T });
  await vp.getByTestId('sb-invitation').waitFor({ state: 'visible', timeout: P.T });
  await vp.getByTestId('sb-invitation-decline').click();
  await vp.getByTestId('sb-invitation').waitFor({ state: 'hidden', timeout: P.T });
  await ap.locator('[data-testid="invite-result"][data-result="declined"]').waitFor({ timeout: P.T });
  assert.match(await ap.getByTestId('invite-result').textContent(), /declined/);
  assert.equal(await vp.getByTestId('sb-pane').isVisible(), false);
  P.assertNoErrors(vp, ap);
});

test('an unanswered invitation expires: the prompt goes away and the agent is told', async (t) => {
  if (missing) throw new Error(missing);
  const vp = await browse('ignores');
  await showVisitors();
  const r = row('ignores');
  await r.waitFor({ timeout: P.T });
  await r.getByTestId('visitor-invite').click();
  const inv = vp.getByTestId('sb-invitation');
  await inv.waitFor({ state: 'visible', timeout: P.T });
  // Still offered after a navigation.
  await vp.getByTestId('nav-pricing').click();
  await vp.waitForURL(/pricing\.html/);
  await inv.waitFor({ state: 'visible', timeout: P.T });
  await inv.waitFor({ state: 'hidden', timeout: 15000 });
  await ap.locator('[data-testid="invite-result"][data-result="expired"]').waitFor({ timeout: P.T });
  assert.equal(await vp.getByTestId('sb-pane').isVisible(), false);
  P.assertNoErrors(vp, ap);
});
