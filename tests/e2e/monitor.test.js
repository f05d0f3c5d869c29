// Supervisors in the console: the Monitor view's live tables, a chat opened read-only, a whisper
// the agent sees tagged as internal and the visitor never sees (live or after a reload), and a
// take-over that moves the chat into the supervisor's Chats and tells the agent. An agent gets
// no Monitor and is refused the frames.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startCluster, launchBrowser, sleep } = require('./harness');
const P = require('./pages');

let cluster, browser, A, B;
let ap, vp, sp, chatId;

before(async () => {
  cluster = await startCluster({ name: 'monitor', agents: 1, supervisors: 1, env: { SWITCHBOARD__CHAT__MONITOR_INTERVAL_MS: '300' } });
  [A, B] = cluster.nodes;
  browser = await launchBrowser();
  ({ ap, vp, chatId } = await P.runningChat(browser, { agentNode: B, agent: cluster.agents[0], visitorNode: A, visitor: { name: 'Mona', email: 'mona@example.com', question: 'Where is my parcel?' } }));
  sp = await P.newPage(await browser.newContext({ viewport: { width: 1400, height: 900 } }));
  // The supervisor on the visitor's node, the agent on the other.
  await P.agentLogin(sp, A, cluster.supervisors[0]);
});

after(async () => {
  if (browser) await browser.close();
  if (cluster) await cluster.stop();
});

const chatRow = () => sp.locator(`[data-testid="monitor-chat"][data-chat="${chatId}"]`);

test('an agent has no Monitor and is refused its frames', async () => {
  assert.equal(await ap.getByTestId('nav-monitor').isVisible(), false);
  const token = await P.consoleToken(ap);
  for (const frame of [{ type: 'watch_monitor' }, { type: 'whisper', chat_id: chatId, client_msg_id: 'w', text: 'x' }, { type: 'take_over', chat_id: chatId }]) {
    const reply = await P.probeFrame(ap, `/ws/agent?token=${encodeURIComponent(token)}`, frame, ['monitor_snapshot', 'ack', 'chat_assigned']);
    assert.equal(reply.type, 'error', JSON.stringify(reply));
    assert.equal(reply.code, 4005);
  }
});

test('the monitor lists the running chat, the agent and the queue, live', async () => {
  await sp.getByTestId('nav-monitor').click();
  await chatRow().waitFor({ timeout: P.T });
  assert.equal(await chatRow().getAttribute('data-state'), 'active');
  assert.equal(await chatRow().getByTestId('monitor-chat-agent').textContent(), 'Agent 1');
  const agent = sp.getByTestId('monitor-agent').filter({ hasText: 'Agent 1' });
  assert.equal(await agent.getByTestId('monitor-agent-load').textContent(), '1 / 3');
  const queue = sp.locator('[data-testid="monitor-queue"][data-queue="general"]');
  assert.equal(await queue.getByTestId('monitor-queue-accepted').textContent(), '1');
  assert.equal(await queue.getByTestId('monitor-queue-waiting').textContent(), '0');
  // A second visitor's request shows up as waiting (on offer to the agent), with the queue's
  // count, and goes when the visitor leaves before anyone accepts.
  const v2 = await P.newPage(await browser.newContext());
  await P.openDemo(v2, A);
  await P.requestChat(v2, { name: 'Otto', email: 'otto@example.com', question: 'Hello?' });
  const waiting = sp.locator('[data-testid="monitor-chat"][data-state="offered"]').filter({ hasText: 'Otto' });
  await waiting.waitFor({ timeout: P.T });
  await queue.getByTestId('monitor-queue-waiting').filter({ hasText: '1' }).waitFor({ timeout: P.T });
  await v2.context().close();
  await waiting.waitFor({ state: 'detached', timeout: P.T });
  await P.shot(sp, 'monitor-tables');
});

test('a whisper reaches the agent as internal and never the visitor', async () => {
  await chatRow().getByTestId('monitor-open').click();
  const transcript = sp.getByTestId('monitor-transcript');
  await transcript.getByTestId('message-text').filter({ hasText: 'Where is my parcel?' }).waitFor({ timeout: P.T });
  await sp.getByTestId('monitor-whisper-text').fill('Offer express shipping');
  await sp.getByTestId('monitor-whisper-send').click();
  const pane = P.chatPane(ap, chatId);
  const seen = pane.locator('[data-event="whisper"][data-internal="true"]').filter({ hasText: 'Offer express shipping' });
  await seen.waitFor({ timeout: P.T });
  assert.equal(await seen.getByTestId('internal-tag').count(), 1);
  await transcript.locator('[data-internal="true"]').filter({ hasText: 'Offer express shipping' }).waitFor({ timeout: P.T });
  // The agent's next message reaches the visitor; the whisper does not.
  await P.agentSend(ap, chatId, 'We can ship it express');
  await vp.getByTestId('sb-messages').getByText('We can ship it express').waitFor({ timeout: P.T });
  await sleep(300);
  assert.doesNotMatch(await vp.getByTestId('sb-messages').textContent(), /Offer express shipping/);
  // Nor after a reload (the widget resumes from the start).
  await vp.reload();
  await vp.getByTestId('sb-messages').getByText('We can ship it express').waitFor({ timeout: P.T });
  assert.doesNotMatch(await vp.getByTestId('sb-messages').textContent(), /Offer express shipping/);
  await P.shot(sp, 'monitor-whisper');
  P.assertNoErrors(vp);
});

test('take over moves the chat to the supervisor and tells the agent', async () => {
  await sp.getByTestId('monitor-take-over').click();
  const mine = P.chatPane(sp, chatId);
  await mine.waitFor({ timeout: P.T });
  await sp.locator(`[data-testid="chat-pane"][data-chat-id="${chatId}"][data-state="active"]`).waitFor({ timeout: P.T });
  // The agent's tab closes and a notice says why.
  await P.chatPane(ap, chatId).waitFor({ state: 'detached', timeout: P.T });
  await ap.getByTestId('error-banner').filter({ hasText: 'supervisor took over' }).waitFor({ timeout: P.T });
  // The visitor sees who joined, and the supervisor writes as the chat's agent now.
  await vp.getByTestId('sb-messages').getByText('Supervisor 1 joined the chat').waitFor({ timeout: P.T });
  await P.agentSend(sp, chatId, 'Hello, I am taking over');
  await vp.getByTestId('sb-messages').getByText('Hello, I am taking over').waitFor({ timeout: P.T });
  await sp.getByTestId('nav-monitor').click();
  await chatRow().getByTestId('monitor-chat-agent').filter({ hasText: 'Supervisor 1' }).waitFor({ timeout: P.T });
  await P.shot(sp, 'monitor-taken-over');
});
