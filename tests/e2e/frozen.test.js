// A node frozen mid-chat (SIGSTOP: its sockets stay open, nothing answers) with both the
// widget and the console on it, behind a load balancer that has not noticed yet. Each client
// follows the keep-alive rule (docs/protocol.md): it pings every interval, calls the link dead
// when a ping brings nothing back by the next one, drops the socket without a close handshake,
// waits a random part of half an interval, gives up an attempt the balancer sends to the
// frozen node again after one interval, and reaches the other node well within the grace
// periods: the chat goes on and is not ended, the agent stays available.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startCluster, launchBrowser, eventually, sleep } = require('./harness');
const { startBalancer } = require('./balancer');
const P = require('./pages');

// Grace 10 s for both sides; ping interval 1 s (the rule allows up to 10000 / 6). With two
// nodes and round robin, one of the two clients is sent to the frozen node twice.
const GRACE_MS = 10000;
const PING_MS = 1000;

let cluster, browser, lb, A, B;

before(async () => {
  cluster = await startCluster({
    name: 'frozen',
    env: {
      SWITCHBOARD__CHAT__VISITOR_GRACE_MS: String(GRACE_MS),
      SWITCHBOARD__CHAT__AGENT_GRACE_MS: String(GRACE_MS),
      SWITCHBOARD__LIMITS__PING_INTERVAL_MS: String(PING_MS)
    }
  });
  [A, B] = cluster.nodes;
  lb = await startBalancer([
    { name: 'A', port: A.front ? A.front.address().port : A.port },
    { name: 'B', port: B.front ? B.front.address().port : B.port }
  ]);
  browser = await launchBrowser();
});

after(async () => {
  if (A && A.child.exitCode === null) {
    try {
      process.kill(A.pid, 'SIGCONT');
    } catch (e) {
      /* gone */
    }
  }
  if (browser) await browser.close();
  if (lb) await lb.close();
  if (cluster) await cluster.stop();
});

test('a frozen node: widget and console reconnect elsewhere within the grace periods', async () => {
  const site = { url: lb.url };
  const ap = await P.newPage(await browser.newContext({ viewport: { width: 1280, height: 800 } }));
  await P.agentLogin(ap, site, cluster.agents[0]);
  await P.setStatus(ap, 'available');
  const vp = await P.newPage(await browser.newContext());
  const chatId = await P.startChat(vp, ap, site, { name: 'Frida', question: 'Hello?' });
  const pane = P.chatPane(ap, chatId);
  const fromAgent = (text) => vp.getByTestId('sb-messages').locator('[data-author="agent"]').filter({ hasText: text });
  await P.visitorSend(vp, 'before the freeze');
  await pane.getByTestId('message-text').filter({ hasText: 'before the freeze' }).waitFor({ timeout: P.T });
  const sockets = (path, node, since) => lb.log.filter((c) => c.path === path && c.backend === node && c.at >= since);
  assert.ok(sockets('/ws/visitor', 'A', 0).length >= 1 && sockets('/ws/agent', 'A', 0).length >= 1, 'both clients on node A');

  // Node A freezes; the balancer keeps sending new connections to A and B in turn.
  lb.roundRobin();
  process.kill(A.pid, 'SIGSTOP');
  const frozenAt = Date.now();

  // Both clients notice, and reach node B.
  await eventually(() => sockets('/ws/visitor', 'B', frozenAt).length > 0 && sockets('/ws/agent', 'B', frozenAt).length > 0, {
    what: `both clients connected to node B (connections: ${JSON.stringify(lb.log.map((c) => ({ ...c, at: c.at - frozenAt })))})`,
    timeout: GRACE_MS,
    every: 50
  });
  await ap.locator('[data-testid="conn-state"][data-state="open"]').waitFor({ timeout: GRACE_MS });
  const first = (path) => Math.min(...lb.log.filter((c) => c.path === path && c.at >= frozenAt).map((c) => c.at)) - frozenAt;
  const onB = (path) => sockets(path, 'B', frozenAt)[0].at - frozenAt;
  const before = (path) => lb.log.filter((c) => c.path === path && c.at < frozenAt).length;
  const figures = {
    sockets_before_freeze: { visitor: before('/ws/visitor'), agent: before('/ws/agent') },
    visitor: { first_attempt_ms: first('/ws/visitor'), on_b_ms: onB('/ws/visitor'), attempts_to_frozen_a: sockets('/ws/visitor', 'A', frozenAt).length },
    agent: { first_attempt_ms: first('/ws/agent'), on_b_ms: onB('/ws/agent'), attempts_to_frozen_a: sockets('/ws/agent', 'A', frozenAt).length }
  };

  // The chat goes on both ways.
  await P.agentSend(ap, chatId, 'after the freeze');
  await fromAgent('after the freeze').waitFor({ timeout: GRACE_MS });
  await P.visitorSend(vp, 'still here');
  await pane.getByTestId('message-text').filter({ hasText: 'still here' }).waitFor({ timeout: GRACE_MS });
  figures.both_ways_ms = Date.now() - frozenAt;
  console.log(`frozen node figures (ping ${PING_MS} ms, grace ${GRACE_MS} ms): ${JSON.stringify(figures)}`);
  for (const who of ['visitor', 'agent']) {
    assert.ok(figures[who].on_b_ms < GRACE_MS, `${who} back after ${figures[who].on_b_ms} ms`);
  }

  // Well past both grace periods (counted from the freeze), nothing was ended and the agent
  // is still available.
  await sleep(Math.max(0, frozenAt + 2 * GRACE_MS - Date.now()));
  assert.equal(await pane.getAttribute('data-state'), 'active');
  await ap.locator('[data-testid="status-select"][data-status="available"]').waitFor({ timeout: P.T });
  const texts = (await P.visitorEntries(vp)).map((e) => e.text);
  assert.ok(!texts.some((t) => /closed the browser/.test(t)), `visitor transcript: ${texts}`);
  await P.agentSend(ap, chatId, 'and later');
  await fromAgent('and later').waitFor({ timeout: P.T });
  const v = await P.visitorEntries(vp);
  assert.equal(new Set(v.map((e) => e.seq)).size, v.length, 'nothing shown twice');
  for (const t of ['before the freeze', 'after the freeze', 'still here', 'and later']) assert.equal(v.filter((e) => e.text === t).length, 1, t);

  process.kill(A.pid, 'SIGCONT');
  await P.agentEnd(ap, chatId);
  await P.decide(ap, chatId, 'trash');
  P.assertNoErrors(vp, ap);
});
