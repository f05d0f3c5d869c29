// Nobody there: the widget switches live between "Chat with us" and "Leave us a message" as
// the only agent comes and goes; the leave-a-message form stores a message the agent claims in
// the console's inbox; a visitor who cancels reads "You left the queue"; a missed offer sets
// the agent away (told why) and the request waits in the Waiting list, where the agent picks it;
// after the maximum wait the visitor leaves a message instead, with the question they typed.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startCluster, launchBrowser, eventually } = require('./harness');
const P = require('./pages');

let cluster, browser, A, B, ap;

before(async () => {
  cluster = await startCluster({ name: 'offline', env: { SWITCHBOARD__CHAT__OFFER_TIMEOUT_MS: '3000', SWITCHBOARD__CHAT__MAX_WAIT_MS: '2000' } });
  [A, B] = cluster.nodes;
  browser = await launchBrowser();
  ap = await P.newPage(await browser.newContext({ viewport: { width: 1280, height: 900 } }));
  await P.agentLogin(ap, B, cluster.agents[0]);
  await P.setStatus(ap, 'away');
});

after(async () => {
  if (browser) await browser.close();
  if (cluster) await cluster.stop();
});

const label = (page) => page.getByTestId('sb-chat-button').textContent();

test('the widget switches between chat and message as the agent comes and goes', async () => {
  const vp = await P.newPage(await browser.newContext());
  await P.openDemo(vp, A);
  await eventually(async () => /Leave us a message/.test(await label(vp)), { what: 'closed label' });
  await vp.getByTestId('sb-chat-button').click();
  await vp.getByTestId('sb-offline-form').waitFor({ timeout: P.T });
  assert.equal(await vp.getByTestId('sb-form').isVisible(), false);
  await P.shot(vp, 'widget-offline');

  // The agent (on the other node) becomes available: the widget opens without a reload.
  await P.setStatus(ap, 'available');
  await eventually(async () => /Chat with us/.test(await label(vp)), { what: 'open label' });
  await vp.getByTestId('sb-form').waitFor({ timeout: P.T });
  await P.setStatus(ap, 'away');
  await eventually(async () => /Leave us a message/.test(await label(vp)), { what: 'closed again' });
  P.assertNoErrors(vp, ap);
});

test('leave a message: stored, shown in the inbox, claimed and done', async () => {
  const vp = await P.newPage(await browser.newContext());
  await P.openDemo(vp, A, 'pricing.html');
  await eventually(async () => /Leave us a message/.test(await label(vp)), { what: 'closed label' });
  await vp.getByTestId('sb-chat-button').click();
  await vp.getByTestId('sb-offline-submit').click();
  await vp.getByTestId('sb-offline-error').filter({ hasText: 'e-mail' }).waitFor({ timeout: P.T });
  await vp.getByTestId('sb-offline-name').fill('Greta');
  await vp.getByTestId('sb-offline-email').fill('greta@example.com');
  await vp.getByTestId('sb-offline-message').fill('Do you have a <b>discount</b> for schools?');
  await vp.getByTestId('sb-offline-submit').click();
  await vp.getByTestId('sb-offline-sent').waitFor({ timeout: P.T });

  const item = ap.getByTestId('inbox-item').filter({ hasText: 'discount' });
  await item.waitFor({ timeout: P.T });
  assert.equal(await item.getByTestId('inbox-message').textContent(), 'Do you have a <b>discount</b> for schools?');
  assert.match(await item.getByTestId('inbox-email').textContent(), /greta@example\.com \(unverified\)/);
  assert.match(await item.textContent(), /pricing\.html/);
  await item.getByTestId('inbox-claim').click();
  await item.getByTestId('inbox-claimed').waitFor({ timeout: P.T });
  await P.shot(ap, 'console-inbox');
  await item.getByTestId('inbox-done').click();
  await item.waitFor({ state: 'detached', timeout: P.T });
  P.assertNoErrors(vp, ap);
});

test('a visitor who cancels reads "You left the queue"', async () => {
  await P.setStatus(ap, 'available');
  const vp = await P.newPage(await browser.newContext());
  await P.openDemo(vp, A);
  await eventually(async () => /Chat with us/.test(await label(vp)), { what: 'open label' });
  await P.requestChat(vp, { name: 'Quentin', question: 'Never mind' });
  await P.offerCard(ap, 'Quentin').waitFor({ timeout: P.T });
  await vp.getByTestId('sb-end').click();
  await vp.getByTestId('sb-ended-text').filter({ hasText: 'You left the queue' }).waitFor({ timeout: P.T });
  await P.offerCard(ap, 'Quentin').getByTestId('offer-reason').filter({ hasText: 'Customer Rejected' }).waitFor({ timeout: P.T });
  P.assertNoErrors(vp, ap);
});

test('a missed offer: the agent is set away and told, then picks the request from the Waiting list', async () => {
  await P.setStatus(ap, 'available');
  const vp = await P.newPage(await browser.newContext());
  await P.openDemo(vp, A);
  await eventually(async () => /Chat with us/.test(await label(vp)), { what: 'open label' });
  await P.requestChat(vp, { name: 'Walter', email: 'walter@example.com', question: 'Still there?' });
  await P.offerCard(ap, 'Walter').waitFor({ timeout: P.T });
  // Nobody answers: after 3 s the agent is away and the console says why.
  await ap.locator('[data-testid="status-select"][data-status="away"]').waitFor({ timeout: P.T });
  await ap.getByTestId('error-banner').filter({ hasText: 'set to Away' }).waitFor({ timeout: P.T });
  const waiting = ap.getByTestId('waiting-item').filter({ hasText: 'Walter' });
  await waiting.waitFor({ timeout: P.T });
  assert.match(await waiting.getByTestId('waiting-email').textContent(), /walter@example\.com \(unverified\)/);
  assert.match(await waiting.getByTestId('waiting-time').textContent(), /waiting \d+ (s|min)/);
  await P.shot(ap, 'console-waiting');
  await waiting.getByTestId('waiting-pick').click();
  await vp.getByTestId('sb-input').waitFor({ timeout: P.T });
  await waiting.waitFor({ state: 'detached', timeout: P.T });
  await P.visitorSend(vp, 'thanks for picking me');
  await ap.getByTestId('message-text').filter({ hasText: 'thanks for picking me' }).waitFor({ timeout: P.T });
  P.assertNoErrors(vp, ap);
});

test('after the maximum wait the visitor leaves a message instead, keeping the question', async () => {
  await P.setStatus(ap, 'available');
  const vp = await P.newPage(await browser.newContext());
  await P.openDemo(vp, A);
  await eventually(async () => /Chat with us/.test(await label(vp)), { what: 'open label' });
  await P.requestChat(vp, { name: 'Hanna', email: 'hanna@example.com', question: 'Can I change my order?' });
  // The agent lets the offer time out (and goes away); the visitor waits past max_wait_ms.
  const instead = vp.getByTestId('sb-leave-instead');
  await instead.waitFor({ timeout: P.T });
  await P.shot(vp, 'widget-waited-long');
  await instead.click();
  assert.equal(await vp.getByTestId('sb-offline-message').inputValue(), 'Can I change my order?');
  assert.equal(await vp.getByTestId('sb-offline-email').inputValue(), 'hanna@example.com');
  await vp.getByTestId('sb-offline-submit').click();
  await vp.getByTestId('sb-offline-sent').waitFor({ timeout: P.T });
  await ap.getByTestId('inbox-item').filter({ hasText: 'Can I change my order?' }).waitFor({ timeout: P.T });
  // The waiting request ended: it is no longer in the Waiting list.
  await ap.getByTestId('waiting-item').filter({ hasText: 'Hanna' }).waitFor({ state: 'detached', timeout: P.T });
  P.assertNoErrors(vp, ap);
});
