// The visitor goes away: mid-chat (after the grace period the agent reads "Visitor has closed
// the browser") and before any agent accepted (the offer shows "Customer Rejected").
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startCluster, launchBrowser } = require('./harness');
const P = require('./pages');

let cluster, browser, A, B, ap;

before(async () => {
  cluster = await startCluster({ name: 'leave' });
  [A, B] = cluster.nodes;
  browser = await launchBrowser();
  ap = await P.newPage(await browser.newContext({ viewport: { width: 1280, height: 800 } }));
  await P.agentLogin(ap, B, cluster.agents[0]);
  await P.setStatus(ap, 'available');
});

after(async () => {
  if (browser) await browser.close();
  if (cluster) await cluster.stop();
});

test('visitor closes the browser mid-chat: "Visitor has closed the browser"', async () => {
  const ctx = await browser.newContext();
  const vp = await P.newPage(ctx);
  await P.openDemo(vp, A);
  await P.requestChat(vp, { name: 'Carl', question: 'Quick one' });
  const chatId = await P.acceptOffer(ap, 'Carl');
  await P.visitorSend(vp, 'bye soon');
  const pane = P.chatPane(ap, chatId);
  await pane.getByTestId('message-text').filter({ hasText: 'bye soon' }).waitFor({ timeout: P.T });
  P.assertNoErrors(vp);
  await ctx.close();
  const started = Date.now();
  await pane.locator('[data-testid="message"][data-author="system"]').filter({ hasText: 'Visitor has closed the browser' }).waitFor({ timeout: 20000 });
  assert.ok(Date.now() - started >= 2000, 'ended before the grace period');
  await pane.getByTestId('wrapup').waitFor({ timeout: P.T });
  await P.shot(ap, 'console-visitor-closed');
  // A console reload during wrap-up restores the ended chat from welcome and its transcript.
  await ap.reload();
  await pane.locator('[data-testid="message"][data-author="system"]').filter({ hasText: 'Visitor has closed the browser' }).waitFor({ timeout: P.T });
  await pane.getByTestId('message-text').filter({ hasText: 'bye soon' }).waitFor({ timeout: P.T });
  assert.equal(await pane.getAttribute('data-state'), 'ended');
  await P.decide(ap, chatId, 'create');
  P.assertNoErrors(ap);
});

test('visitor leaves before anyone accepted: the offer shows "Customer Rejected"', async () => {
  const ctx = await browser.newContext();
  const vp = await P.newPage(ctx);
  await P.openDemo(vp, A);
  await P.requestChat(vp, { name: 'Dora', question: 'Anyone there?' });
  const card = P.offerCard(ap, 'Dora');
  await card.waitFor({ timeout: P.T });
  await vp.getByTestId('sb-queue-position').waitFor({ timeout: P.T });
  await P.shot(vp, 'widget-queued');
  P.assertNoErrors(vp);
  await ctx.close();
  const reason = card.getByTestId('offer-reason');
  await reason.filter({ hasText: 'Customer Rejected' }).waitFor({ timeout: 20000 });
  assert.equal(await card.getByTestId('offer-accept').isVisible(), false);
  await P.shot(ap, 'console-customer-rejected');
  P.assertNoErrors(ap);
});
