// Offers between two agents: deny moves the request to the other agent, an unanswered offer
// times out and moves on, and Close ends the request (the visitor is told).
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startCluster, launchBrowser } = require('./harness');
const P = require('./pages');

let cluster, browser, A, B, ap1, ap2;

before(async () => {
  cluster = await startCluster({ name: 'offers', agents: 2 });
  [A, B] = cluster.nodes;
  browser = await launchBrowser();
  ap1 = await P.newPage(await browser.newContext({ viewport: { width: 1280, height: 800 } }));
  ap2 = await P.newPage(await browser.newContext({ viewport: { width: 1280, height: 800 } }));
  await P.agentLogin(ap1, B, cluster.agents[0]);
  await P.agentLogin(ap2, A, cluster.agents[1]);
  await P.setStatus(ap1, 'available');
  await P.setStatus(ap2, 'available');
});

after(async () => {
  if (browser) await browser.close();
  if (cluster) await cluster.stop();
});

/** Which agent page holds a live offer card for `name`. */
async function offeredTo(name) {
  const deadline = Date.now() + P.T;
  while (Date.now() < deadline) {
    for (const p of [ap1, ap2]) if ((await P.offerCard(p, name).locator(':scope:not([data-revoked])').count()) > 0) return p;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no live offer for ${name}`);
}

test('deny, timeout and close', async () => {
  const vp = await P.newPage(await browser.newContext());
  await P.openDemo(vp, A);
  await P.requestChat(vp, { name: 'Olga', question: 'Who takes this?' });

  // The first agent denies: the other one gets it.
  const first = await offeredTo('Olga');
  const second = first === ap1 ? ap2 : ap1;
  await P.offerCard(first, 'Olga').getByTestId('offer-deny').click();
  await P.offerCard(first, 'Olga').waitFor({ state: 'detached', timeout: P.T });
  const card = P.offerCard(second, 'Olga');
  await card.waitFor({ timeout: P.T });
  assert.match(await card.getByTestId('offer-countdown').textContent(), /Expires in \d+ s/);
  await P.shot(second, 'console-offer');

  // Close: the request ends; the visitor is told.
  const close = card.getByTestId('offer-close');
  await close.click();
  // The first press asks; nothing is sent until the second.
  assert.equal(await close.textContent(), 'Close the request?');
  assert.equal(await vp.getByTestId('sb-ended').isVisible(), false);
  await close.click();
  await card.getByTestId('offer-reason').filter({ hasText: 'Closed' }).waitFor({ timeout: P.T });
  await vp.getByTestId('sb-ended').waitFor({ timeout: P.T });
  await vp.getByTestId('sb-messages').locator('[data-author="system"]').first().waitFor({ timeout: P.T });
  P.assertNoErrors(vp, ap1, ap2);
});

test('an unanswered offer times out and moves on', async () => {
  const vp = await P.newPage(await browser.newContext());
  await P.openDemo(vp, A);
  await P.requestChat(vp, { name: 'Tim', question: 'Hello?' });
  const first = await offeredTo('Tim');
  const second = first === ap1 ? ap2 : ap1;
  // Nobody answers for 5 s.
  await P.offerCard(first, 'Tim').getByTestId('offer-reason').filter({ hasText: 'Timed out' }).waitFor({ timeout: 15000 });
  const chatId = await P.acceptOffer(second, 'Tim');
  await vp.getByTestId('sb-input').waitFor({ timeout: P.T });
  await P.agentEnd(second, chatId);
  await P.decide(second, chatId, 'trash');
  P.assertNoErrors(vp, ap1, ap2);
});
