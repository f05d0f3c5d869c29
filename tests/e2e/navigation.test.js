// The chat survives the visitor's navigation and reload: the pane comes back with its history,
// nothing shown twice, and the chat carries on both ways.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startCluster, launchBrowser, eventually } = require('./harness');
const P = require('./pages');

let cluster, browser, A, B;

before(async () => {
  cluster = await startCluster({ name: 'nav' });
  [A, B] = cluster.nodes;
  browser = await launchBrowser();
});

after(async () => {
  if (browser) await browser.close();
  if (cluster) await cluster.stop();
});

function assertUnique(entries) {
  const seqs = entries.map((e) => e.seq);
  assert.equal(new Set(seqs).size, seqs.length, `duplicate entries: ${seqs.join(',')}`);
}

test('navigation and reload mid-chat restore the pane with its history, without duplicates', async () => {
  const ap = await P.newPage(await browser.newContext({ viewport: { width: 1280, height: 800 } }));
  await P.agentLogin(ap, B, cluster.agents[0]);
  await P.setStatus(ap, 'available');
  const vp = await P.newPage(await browser.newContext());
  await P.openDemo(vp, A);
  await P.requestChat(vp, { name: 'Nina', question: 'Where is the pricing?' });
  const chatId = await P.acceptOffer(ap, 'Nina');
  await P.visitorSend(vp, 'first from visitor');
  await P.agentSend(ap, chatId, 'first from agent');
  await vp.getByTestId('sb-messages').locator('[data-author="agent"]').filter({ hasText: 'first from agent' }).waitFor({ timeout: P.T });
  await eventually(async () => (await vp.locator('[data-testid="message"][data-pending]').count()) === 0, { what: 'acks' });
  const before = await P.visitorEntries(vp);
  assertUnique(before);

  // A link of the host page: a full page load.
  await vp.getByTestId('nav-pricing').click();
  await vp.waitForURL(/pricing\.html$/);
  await vp.getByTestId('sb-pane').waitFor({ state: 'visible', timeout: P.T });
  await vp.getByTestId('sb-input').waitFor({ timeout: P.T });
  await vp.getByTestId('sb-messages').locator('[data-author="agent"]').filter({ hasText: 'first from agent' }).waitFor({ timeout: P.T });
  // Let the resume replay (if any) land, then compare.
  await new Promise((r) => setTimeout(r, 800));
  const afterNav = await P.visitorEntries(vp);
  assertUnique(afterNav);
  assert.deepEqual(afterNav.map((e) => e.seq), before.map((e) => e.seq));

  await P.visitorSend(vp, 'second from visitor');
  const pane = P.chatPane(ap, chatId);
  await pane.getByTestId('message-text').filter({ hasText: 'second from visitor' }).waitFor({ timeout: P.T });
  await P.agentSend(ap, chatId, 'second from agent');
  await vp.getByTestId('sb-messages').locator('[data-author="agent"]').filter({ hasText: 'second from agent' }).waitFor({ timeout: P.T });

  // A reload too.
  await vp.reload();
  await vp.getByTestId('sb-messages').locator('[data-author="agent"]').filter({ hasText: 'second from agent' }).waitFor({ timeout: P.T });
  await new Promise((r) => setTimeout(r, 800));
  const afterReload = await P.visitorEntries(vp);
  assertUnique(afterReload);
  assert.equal(afterReload.filter((e) => e.text === 'second from visitor').length, 1);
  assert.equal(afterReload.length, before.length + 2);

  // The agent saw every visitor message exactly once.
  const agentTexts = await pane.locator('[data-testid="message"][data-author="visitor"] [data-testid="message-text"]').allTextContents();
  assert.equal(agentTexts.filter((t) => t === 'first from visitor').length, 1);
  assert.equal(agentTexts.filter((t) => t === 'second from visitor').length, 1);
  await P.shot(vp, 'widget-after-navigation');

  await P.agentEnd(ap, chatId);
  await P.decide(ap, chatId, 'trash');
  P.assertNoErrors(vp, ap);
});
