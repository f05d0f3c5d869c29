// The console's Admin section across two nodes: only admins see it; an agent disabled on node
// A is signed out of its console on node B and can log in again once enabled; max chats edited
// in the form; a queue created with its offline text and renamed; the widget's appearance with its live
// preview, saved on node A and shown by a widget served from node B (colour, corner, texts as
// text); a webhook endpoint registered, its secret rotated and shown once, disabled; the audit
// log lists the changes.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { startCluster, launchBrowser, eventually, agentToken, getJson } = require('./harness');
const P = require('./pages');

const BIN = process.env.SWITCHBOARD_BIN || path.resolve(__dirname, '../../target/debug/switchboard');
const ADMIN = { username: 'boss', password: 'secret-password' };

let cluster, browser, A, B, admin, agent;

before(async () => {
  // Endpoints on loopback are allowed here; nothing is delivered (no chat runs).
  cluster = await startCluster({ name: 'admin', env: { SWITCHBOARD__WEBHOOKS__ALLOWED_NETWORKS: '127.0.0.0/8' } });
  [A, B] = cluster.nodes;
  execFileSync(BIN, ['agent', 'add', '--username', ADMIN.username, '--password', ADMIN.password, '--name', 'Boss', '--role', 'admin', '--max-chats', '3', '--queues', 'general'], { env: A.env, stdio: 'ignore' });
  browser = await launchBrowser();
  admin = await P.newPage(await browser.newContext({ viewport: { width: 1366, height: 900 } }));
  agent = await P.newPage(await browser.newContext({ viewport: { width: 1280, height: 800 } }));
  admin.on('dialog', (d) => d.accept());
  await P.agentLogin(admin, A, ADMIN);
  await P.agentLogin(agent, B, cluster.agents[0]);
});

after(async () => {
  if (browser) await browser.close();
  if (cluster) await cluster.stop();
});

async function openTab(tab) {
  await admin.getByTestId('nav-admin').click();
  await admin.getByTestId(`admin-tab-${tab}`).click();
}

test('only admins see the Admin section', async () => {
  assert.equal(await admin.getByTestId('nav-admin').isVisible(), true);
  assert.equal(await agent.getByTestId('nav-admin').isVisible(), false);
});

test('agents: edits and a disable on node A take effect on node B', async () => {
  await openTab('agents');
  const row = admin.getByTestId('admin-agent-agent1');
  await row.waitFor({ timeout: P.T });
  await admin.getByTestId('admin-agent-edit-agent1').click();
  await admin.getByTestId('admin-agent-max').fill('1');
  await admin.getByTestId('admin-agent-name').fill('Agent One');
  await admin.getByTestId('admin-agent-save').click();
  await admin.locator('[data-testid="admin-agents-status"]', { hasText: 'Saved.' }).waitFor({ timeout: P.T });
  assert.equal(await admin.getByTestId('admin-agent-max-agent1').textContent(), '1');
  // The agent's console on node B reconnects with the new settings, under its new name.
  const token = await agentToken(B, cluster.agents[0]);
  const me = await getJson(B, '/api/agent/me', token);
  assert.equal((me.agent || me).max_chats, 1);
  await agent.locator('[data-testid="conn-state"][data-state="open"]').waitFor({ timeout: P.T });

  // Disabled on A: the console on B is signed out at once.
  await admin.getByTestId('admin-agent-toggle-agent1').click();
  await row.locator('td', { hasText: 'Disabled' }).waitFor({ timeout: P.T });
  await agent.getByTestId('login-form').waitFor({ timeout: P.T });
  await P.shot(admin, 'admin-agents');
  await admin.getByTestId('admin-agent-toggle-agent1').click();
  await row.locator('td', { hasText: 'Active' }).waitFor({ timeout: P.T });
  await P.agentLogin(agent, B, cluster.agents[0]);
  assert.equal(await agent.getByTestId('agent-name').textContent(), 'Agent One');
});

test('queues: created with an offline text', async () => {
  await openTab('queues');
  await admin.getByTestId('admin-queue-new-name').fill('billing');
  await admin.getByTestId('admin-queue-create').click();
  await admin.getByTestId('admin-queue-form').waitFor({ timeout: P.T });
  await admin.getByTestId('admin-queue-offline').fill('Billing answers on weekdays.');
  await admin.getByTestId('admin-queue-save').click();
  await admin.locator('[data-testid="admin-queues-status"]', { hasText: 'Saved.' }).waitFor({ timeout: P.T });
  const token = await agentToken(B, ADMIN);
  const q = await getJson(B, '/api/admin/queues/billing', token);
  assert.equal(q.offline_text, 'Billing answers on weekdays.');
  // Renamed (the dialog answers with the new name): settings kept, seen on node B.
  admin.removeAllListeners('dialog');
  admin.once('dialog', (d) => d.accept('invoices'));
  await admin.getByTestId('admin-queue-rename-billing').click();
  await admin.getByTestId('admin-queue-invoices').waitFor({ timeout: P.T });
  admin.on('dialog', (d) => d.accept());
  const renamed = await getJson(B, '/api/admin/queues/invoices', token);
  assert.equal(renamed.offline_text, 'Billing answers on weekdays.');
});

test('appearance: live preview, saved on A, shown by the widget from B', async () => {
  // The launcher text is the label while a chat can be started: someone must be there.
  await P.setStatus(agent, 'available');
  await openTab('appearance');
  await admin.getByTestId('admin-look-form').waitFor({ timeout: P.T });
  await admin.getByTestId('admin-look-color').fill('#aa3300');
  await admin.getByTestId('admin-look-position').selectOption('left');
  await admin.getByTestId('admin-look-launcher').fill('Talk to us');
  const greeting = 'Hi <img src=x onerror="window.__owned=1"> how can we help?';
  await admin.getByTestId('admin-look-greeting').fill(greeting);
  // The preview follows the form before anything is saved.
  const launcher = admin.getByTestId('admin-look-preview-launcher');
  assert.equal(await launcher.textContent(), 'Talk to us');
  assert.equal(await launcher.evaluate((e) => getComputedStyle(e).backgroundColor), 'rgb(170, 51, 0)');
  assert.equal(await admin.getByTestId('admin-look-preview-greeting').textContent(), greeting);
  await P.shot(admin, 'admin-appearance');
  // A bad colour is refused by the node with the field named.
  await admin.getByTestId('admin-look-color').fill('red');
  await admin.getByTestId('admin-look-save').click();
  await admin.locator('[data-testid="admin-appearance-status"]', { hasText: 'color must be' }).waitFor({ timeout: P.T });
  await admin.getByTestId('admin-look-color').fill('#AA3300');
  await admin.getByTestId('admin-look-save').click();
  await admin.locator('[data-testid="admin-appearance-status"]', { hasText: 'Saved.' }).waitFor({ timeout: P.T });

  // A visitor on node B: the node serves the new look within its cache time.
  const vp = await P.newPage(await browser.newContext({ viewport: { width: 1280, height: 800 } }));
  await eventually(async () => {
    await P.openDemo(vp, B);
    await vp.getByTestId('sb-widget').locator('.sb-button[data-testid]').first().waitFor({ state: 'visible', timeout: P.T });
    return (await vp.getByTestId('sb-chat-button').textContent()).includes('Talk to us');
  }, { timeout: 20000, every: 1000, what: 'the new launcher text on node B' });
  const button = vp.getByTestId('sb-chat-button');
  assert.equal(await button.evaluate((e) => getComputedStyle(e).backgroundColor), 'rgb(170, 51, 0)');
  const box = await button.boundingBox();
  assert.ok(box.x < 100, `launcher on the left, x=${box.x}`);
  await button.click();
  const shown = vp.getByTestId('sb-greeting');
  assert.equal(await shown.textContent(), greeting);
  assert.equal(await shown.locator('img').count(), 0);
  assert.equal(await vp.evaluate(() => window.__owned), undefined);
  await P.shot(vp, 'widget-appearance');
  P.assertNoErrors(vp);
});

test('webhooks: register, rotate the secret (shown once), disable', async () => {
  await openTab('webhooks');
  await admin.getByTestId('admin-webhook-event-chat.ended').waitFor({ timeout: P.T });
  await admin.getByTestId('admin-webhook-url').fill('http://127.0.0.1:9/switchboard');
  await admin.getByTestId('admin-webhook-event-chat.ended').check();
  await admin.getByTestId('admin-webhook-create').click();
  const secret = admin.getByTestId('admin-webhook-secret');
  await secret.waitFor({ timeout: P.T });
  const first = await secret.textContent();
  await admin.getByTestId('admin-webhook-1').waitFor({ timeout: P.T });
  await admin.getByTestId('admin-webhook-rotate-1').click();
  await eventually(async () => (await secret.textContent()) !== first, { what: 'a new secret' });
  await admin.getByTestId('admin-webhook-toggle-1').click();
  await admin.locator('[data-testid="admin-webhook-state-1"]', { hasText: 'Disabled' }).waitFor({ timeout: P.T });
  await admin.getByTestId('admin-webhook-deliveries-1').click();
  await admin.getByTestId('admin-deliveries-title').waitFor({ timeout: P.T });
  const token = await agentToken(B, ADMIN);
  const list = await getJson(B, '/api/admin/webhooks', token);
  assert.equal(list.length, 1);
  assert.equal(list[0].enabled, false);
  assert.deepEqual(list[0].events, ['chat.ended']);
});

test('data protection: the audit log lists the changes, page by page', async () => {
  await openTab('privacy');
  const rows = admin.getByTestId('admin-audit-rows');
  await rows.locator('tr', { hasText: 'appearance.change' }).waitFor({ timeout: P.T });
  for (const action of ['agent.disable', 'agent.enable', 'agent.change', 'queue.create', 'queue.rename', 'webhook.create']) {
    assert.equal(await rows.locator('tr', { hasText: action }).count() > 0, true, action);
  }
  await admin.getByTestId('admin-audit-action').fill('agent.disable');
  await admin.getByTestId('admin-audit-filter').click();
  await eventually(async () => (await rows.locator('tr').count()) === 1, { what: 'one agent.disable entry' });
  await admin.getByTestId('admin-privacy-email').fill('nobody@example.com');
  await admin.getByTestId('admin-privacy-find').click();
  await admin.locator('[data-testid="admin-privacy-status"]', { hasText: 'No contact found.' }).waitFor({ timeout: P.T });
  await P.shot(admin, 'admin-privacy');
  P.assertNoErrors(admin);
});
