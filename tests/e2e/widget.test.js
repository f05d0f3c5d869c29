// The widget on its own terms: keyboard use, required fields and translations from the embed,
// the shared helpers, reconnection with the outbox when a node restarts, catching up when a
// node's subscriber connection to Redis drops, and what both sides see when Redis loses its data.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startCluster, launchBrowser, restartNode, killSubscriberConnection, loseRedisData, metric, eventually, sleep } = require('./harness');
const P = require('./pages');

let cluster, browser, A, B;

before(async () => {
  // A restart takes longer than the 3 s grace the other files use; here a drop must not end the chat.
  cluster = await startCluster({ name: 'widget', env: { SWITCHBOARD__CHAT__VISITOR_GRACE_MS: '30000' } });
  [A, B] = cluster.nodes;
  browser = await launchBrowser();
  // The widget offers a chat (rather than the leave-a-message form) only while an agent is
  // available: one stays available throughout this file.
  const keeper = await P.newPage(await browser.newContext());
  await P.agentLogin(keeper, B, cluster.agents[0]);
  await P.setStatus(keeper, 'available');
});

after(async () => {
  if (browser) await browser.close();
  if (cluster) await cluster.stop();
});

test('the node serves the web assets with their content types', async () => {
  const fs = require('node:fs');
  const path = require('node:path');
  const web = path.join(__dirname, '../../src/web');
  const src = (f) => fs.readFileSync(path.join(web, f), 'utf8');
  const JS = 'text/javascript';
  const HTML = 'text/html';
  const expected = [
    ['/widget.js', JS, null],
    ['/console/', HTML, 'console/index.html'],
    ['/console/console.css', 'text/css', 'console/console.css'],
    ['/console/socket.js', JS, 'shared/socket.js'],
    ['/console/transcript.js', JS, 'shared/transcript.js'],
    ['/demo/', HTML, 'demo/index.html'],
    ['/demo/index.html', HTML, 'demo/index.html'],
    ['/demo/pricing.html', HTML, 'demo/pricing.html'],
    ['/demo/contact.html', HTML, 'demo/contact.html']
  ];
  // Every module of the console, each served as itself.
  for (const dir of ['console', 'console/admin']) {
    for (const f of fs.readdirSync(path.join(web, dir)).filter((f) => f.endsWith('.js'))) expected.push([`/${dir}/${f}`, JS, `${dir}/${f}`]);
  }
  for (const [p, type, file] of expected) {
    const r = await fetch(`${A.url}${p}`);
    assert.equal(r.status, 200, p);
    assert.ok((r.headers.get('content-type') || '').startsWith(type), `${p}: ${r.headers.get('content-type')}`);
    const body = await r.text();
    // A stale binary embeds old files: rebuild after changing src/web.
    if (file) assert.equal(body, src(file), `${p} differs from src/web/${file}`);
  }
  const widget = await (await fetch(`${A.url}/widget.js`)).text();
  // Served without comment lines (src/web/mod.rs): every code line of every module is there.
  const codeLines = (text) => {
    let inBlock = false;
    return text.split('\n').filter((l) => {
      const t = l.trimStart();
      if (inBlock) {
        inBlock = !t.includes('*/');
        return false;
      }
      if (!t || t.startsWith('//')) return false;
      if (t.startsWith('/*')) {
        inBlock = !t.includes('*/');
        return false;
      }
      return true;
    }).join('\n');
  };
  const modules = ['shared/socket.js', 'shared/transcript.js', 'widget-offline.js', 'widget-files.js', 'widget-after.js', 'widget-invite.js', 'widget-signals.js', 'widget-prechat.js', 'widget-session.js', 'widget-look.js', 'widget-view.js', 'widget.js'];
  for (const f of modules) assert.ok(widget.includes(codeLines(src(f))), `/widget.js lacks ${f}`);
  assert.doesNotMatch(widget, /^\s*\/\//m, 'no comment-only lines are served');
  for (const p of ['/console', '/demo']) {
    const r = await fetch(`${A.url}${p}`, { redirect: 'manual' });
    assert.ok([301, 302, 307, 308].includes(r.status), `${p}: ${r.status}`);
    assert.equal(new URL(r.headers.get('location'), A.url).pathname, `${p}/`);
  }
});

test('keyboard, required fields and translated strings from the embedding page', async () => {
  const page = await P.newPage(await browser.newContext());
  // A page of the site with its own embed options (served by the test, on node A's origin).
  await page.route(`${A.url}/demo/custom.html`, (route) =>
    route.fulfill({
      contentType: 'text/html',
      body: `<!doctype html><html lang="de"><body><a href="#" id="first">Start</a>
        <script>window.SwitchboardWidget = { strings: { button: 'Chatten Sie mit uns', start: 'Chat starten' } };</script>
        <script src="/widget.js" data-queue="general" data-required="name,email" async></script></body></html>`
    })
  );
  await page.goto(`${A.url}/demo/custom.html`);
  const button = page.getByTestId('sb-chat-button');
  await button.waitFor({ timeout: P.T });
  assert.match(await button.textContent(), /Chatten Sie mit uns/);
  assert.equal(await button.getAttribute('aria-expanded'), 'false');

  // Keyboard only: focus the button, open with Enter, the first field has focus.
  await button.focus();
  await page.keyboard.press('Enter');
  await page.getByTestId('sb-pane').waitFor({ state: 'visible' });
  assert.equal(await button.getAttribute('aria-expanded'), 'true');
  await eventually(() => page.getByTestId('sb-name').evaluate((e) => e.getRootNode().activeElement === e), { what: 'focus on name' });
  assert.equal(await page.getByTestId('sb-submit').textContent(), 'Chat starten');
  assert.equal(await page.getByTestId('sb-name').getAttribute('aria-required'), 'true');
  assert.equal(await page.getByTestId('sb-question').getAttribute('aria-required'), null);

  // Required fields are checked before anything is sent.
  await page.getByTestId('sb-submit').click();
  await page.getByTestId('sb-form-error').filter({ hasText: 'Name is required' }).waitFor();
  await page.getByTestId('sb-name').fill('Erika');
  await page.getByTestId('sb-email').fill('not-an-email');
  await page.getByTestId('sb-submit').click();
  await page.getByTestId('sb-form-error').filter({ hasText: 'valid e-mail' }).waitFor();
  assert.equal(await page.getByTestId('sb-queue-position').isVisible(), false);

  // Escape closes the pane and gives focus back to the button.
  await page.getByTestId('sb-email').press('Escape');
  await page.getByTestId('sb-pane').waitFor({ state: 'hidden' });
  await eventually(() => button.evaluate((e) => e.getRootNode().activeElement === e), { what: 'focus back on the button' });
  // The log is announced to screen readers.
  assert.equal(await page.getByTestId('sb-messages').getAttribute('aria-live'), 'polite');
  // The page got no globals but the ones it set.
  assert.equal(await page.evaluate(() => typeof window.SbSocket + typeof window.SbTranscript), 'undefinedundefined');
  P.assertNoErrors(page);
});

test('embedded on another site: the widget talks to its node across origins', async () => {
  // A real server (another origin on loopback: Chromium blocks public pages from loading
  // loopback scripts, so a routed fake host would not do).
  const http = require('node:http');
  const shop = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html' });
    res.end(`<!doctype html><html><body><h1>Shop</h1><script src="${A.url}/widget.js" data-queue="general" async></script></body></html>`);
  });
  await new Promise((r) => shop.listen(0, '127.0.0.1', r));
  after(() => shop.close());
  const site = `http://localhost:${shop.address().port}`;
  const page = await P.newPage(await browser.newContext());
  await page.goto(`${site}/`);
  await page.getByTestId('sb-chat-button').click();
  await page.getByTestId('sb-name').waitFor({ timeout: P.T });
  // The session came from the node (CORS), the socket is up: no connection notice remains.
  await eventually(async () => (await page.getByTestId('sb-status').textContent()) === '', { what: 'the connection from another origin' });
  assert.ok(await page.evaluate(() => !!localStorage.getItem('sb.visitor')));
  P.assertNoErrors(page);
});

test('a refused token is renewed, not retried as is', async () => {
  const page = await P.newPage(await browser.newContext());
  let calls = 0;
  const sockets = [];
  page.on('websocket', (ws) => sockets.push(new URL(ws.url()).searchParams.get('token')));
  // The first session answer carries a token the node will refuse.
  await page.route(`${A.url}/api/visitor/session`, async (route) => {
    calls += 1;
    if (calls === 1) return route.fulfill({ contentType: 'application/json', body: JSON.stringify({ visitor_id: 'x', token: 'forged.token' }) });
    return route.continue();
  });
  await P.openDemo(page, A);
  await page.getByTestId('sb-chat-button').click();
  await eventually(async () => calls >= 2 && (await page.getByTestId('sb-status').textContent()) === '', { what: 'a renewed session' });
  assert.equal(sockets[0], 'forged.token');
  assert.equal(sockets.filter((t) => t === 'forged.token').length, 1, 'the refused token was used again');
  assert.notEqual(await page.evaluate(() => localStorage.getItem('sb.visitor')), 'forged.token');
  P.assertNoErrors(page);
});

test('shared helpers: sequence order and inert links', async () => {
  const page = await P.newPage(await browser.newContext());
  await page.goto(`${B.url}/console/`);
  const r = await page.evaluate(() => {
    const cmp = SbSocket.compareSeq;
    const el = document.createElement('div');
    SbTranscript.appendLinkified(el, 'see https://a.example/x?y=1, (https://b.example/wiki/Foo_(bar)) and javascript:alert(1) <b>hi</b>.');
    return {
      order: [cmp('9-5', '10-0') < 0, cmp('10-2', '10-10') < 0, cmp('', '0-0') < 0, cmp('5-5', '5-5') === 0],
      links: [...el.querySelectorAll('a')].map((a) => [a.getAttribute('href'), a.textContent, a.rel, a.target]),
      text: el.textContent,
      elements: el.querySelectorAll('*').length
    };
  });
  assert.deepEqual(r.order, [true, true, true, true]);
  assert.deepEqual(r.links, [
    ['https://a.example/x?y=1', 'https://a.example/x?y=1', 'noopener noreferrer', '_blank'],
    ['https://b.example/wiki/Foo_(bar)', 'https://b.example/wiki/Foo_(bar)', 'noopener noreferrer', '_blank']
  ]);
  assert.equal(r.text, 'see https://a.example/x?y=1, (https://b.example/wiki/Foo_(bar)) and javascript:alert(1) <b>hi</b>.');
  assert.equal(r.elements, 2);
  P.assertNoErrors(page);
});

test('node restarts: both sides reconnect, resume, and the outbox delivers once', async () => {
  const ap = await P.newPage(await browser.newContext({ viewport: { width: 1280, height: 800 } }));
  await P.agentLogin(ap, B, cluster.agents[0]);
  await P.setStatus(ap, 'available');
  const vp = await P.newPage(await browser.newContext());
  await P.openDemo(vp, A);
  await P.requestChat(vp, { name: 'Rita', question: 'Still there?' });
  const chatId = await P.acceptOffer(ap, 'Rita');
  const pane = P.chatPane(ap, chatId);
  await P.visitorSend(vp, 'before restart');
  await pane.getByTestId('message-text').filter({ hasText: 'before restart' }).waitFor({ timeout: P.T });

  // The visitor's node goes away for a while; a message typed meanwhile waits in the outbox.
  const restarting = restartNode(A, { downMs: 1500 });
  await vp.getByTestId('sb-status').filter({ hasText: /Reconnecting|Connecting/ }).waitFor({ timeout: P.T });
  await P.visitorSend(vp, 'typed while offline');
  assert.equal(await vp.locator('[data-testid="message"][data-pending="true"]').count(), 1);
  await restarting;
  await pane.getByTestId('message-text').filter({ hasText: 'typed while offline' }).waitFor({ timeout: 30000 });
  await eventually(async () => (await vp.locator('[data-testid="message"][data-pending]').count()) === 0, { what: 'the ack after reconnect', timeout: 30000 });

  // The agent's node restarts: the console restores the tab and carries on.
  await restartNode(B, { downMs: 500 });
  await ap.locator('[data-testid="conn-state"][data-state="open"]').waitFor({ timeout: 30000 });
  await pane.waitFor({ timeout: P.T });
  await eventually(() => pane.getAttribute('data-state').then((s) => s === 'active'), { what: 'the restored tab' });
  await P.agentSend(ap, chatId, 'after both restarts');
  await vp.getByTestId('sb-messages').locator('[data-author="agent"]').filter({ hasText: 'after both restarts' }).waitFor({ timeout: 30000 });

  // The visitor may see the message before the agent's own copy of the entry lands.
  await eventually(async () => (await pane.locator('[data-testid="message"][data-pending]').count()) === 0, { what: "the agent's own entries" });
  const agentTexts = await pane.locator('[data-testid="message"][data-seq] [data-testid="message-text"]').allTextContents();
  for (const t of ['before restart', 'typed while offline', 'after both restarts']) assert.equal(agentTexts.filter((x) => x === t).length, 1, t);
  const v = await P.visitorEntries(vp);
  assert.equal(new Set(v.map((e) => e.seq)).size, v.length);
  for (const t of ['before restart', 'typed while offline', 'after both restarts']) assert.equal(v.filter((e) => e.text === t).length, 1, t);

  await P.agentEnd(ap, chatId);
  await P.decide(ap, chatId, 'trash');
  P.assertNoErrors(vp, ap);
});

test("a node's subscriber connection to Redis drops: the widget catches up and misses nothing", async () => {
  const ap = await P.newPage(await browser.newContext({ viewport: { width: 1280, height: 800 } }));
  await P.agentLogin(ap, B, cluster.agents[0]);
  await P.setStatus(ap, 'available');
  const vp = await P.newPage(await browser.newContext());
  await P.openDemo(vp, A);
  await P.requestChat(vp, { name: 'Sam', question: 'Anyone?' });
  const chatId = await P.acceptOffer(ap, 'Sam');
  const pane = P.chatPane(ap, chatId);
  const fromAgent = (text) => vp.getByTestId('sb-messages').locator('[data-author="agent"]').filter({ hasText: text });
  await P.agentSend(ap, chatId, 'before the cut');
  await fromAgent('before the cut').waitFor({ timeout: P.T });

  // Node A (the visitor's) loses its subscriber connection; the agent writes while it comes
  // back. Node A subscribes again and brings the widget's connection up to date from the
  // chat's stream (the widget stays connected).
  const series = 'switchboard_resyncs_total{cause="reconnected"}';
  const before = await metric(A, series);
  killSubscriberConnection(A);
  await P.agentSend(ap, chatId, 'during the cut');
  await eventually(async () => (await metric(A, series)) === before + 1, { what: 'node A to subscribe again and resync' });
  await fromAgent('during the cut').waitFor({ timeout: 30000 });

  // Both ways work after it, and nothing shows twice on either side.
  await P.visitorSend(vp, 'after the cut');
  await pane.getByTestId('message-text').filter({ hasText: 'after the cut' }).waitFor({ timeout: 30000 });
  await P.agentSend(ap, chatId, 'and back');
  await fromAgent('and back').waitFor({ timeout: 30000 });
  const v = await P.visitorEntries(vp);
  assert.equal(new Set(v.map((e) => e.seq)).size, v.length);
  for (const t of ['before the cut', 'during the cut', 'after the cut', 'and back']) assert.equal(v.filter((e) => e.text === t).length, 1, t);

  await P.agentEnd(ap, chatId);
  await P.decide(ap, chatId, 'trash');
  P.assertNoErrors(vp, ap);
});

// Last in this file: it wipes the cluster's live state.
test('Redis loses its data: the widget and the console say so and resume nothing', async () => {
  const ap = await P.newPage(await browser.newContext({ viewport: { width: 1280, height: 800 } }));
  await P.agentLogin(ap, B, cluster.agents[0]);
  await P.setStatus(ap, 'available');
  const vp = await P.newPage(await browser.newContext());
  await P.openDemo(vp, A);
  await P.requestChat(vp, { name: 'Lou', question: 'Still there?' });
  const chatId = await P.acceptOffer(ap, 'Lou');
  await P.agentSend(ap, chatId, 'hello Lou');
  await vp.getByTestId('sb-messages').locator('[data-author="agent"]').filter({ hasText: 'hello Lou' }).waitFor({ timeout: P.T });

  const series = 'switchboard_redis_state_lost_total';
  const before = [await metric(A, series), await metric(B, series)];
  loseRedisData(cluster);
  const lost = 'the service lost its live state';
  await vp.getByTestId('sb-error').filter({ hasText: lost }).waitFor({ timeout: 15000 });
  await ap.getByTestId('error-banner').filter({ hasText: lost }).waitFor({ timeout: 15000 });
  await eventually(async () => (await metric(A, series)) === before[0] + 1 && (await metric(B, series)) === before[1] + 1, { what: 'both nodes to count the loss' });
  // The console dropped the chat; a few seconds on, both still show the text (no retry loop
  // that replaces it) and the widget offers a new chat.
  await P.chatPane(ap, chatId).waitFor({ state: 'detached', timeout: 15000 });
  await sleep(3000);
  assert.equal(await vp.getByTestId('sb-error').textContent(), lost);
  assert.equal(await ap.getByTestId('error-banner').textContent(), lost);
});
