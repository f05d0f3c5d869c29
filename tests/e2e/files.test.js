// Files both ways (uploaded over HTTP, announced as chat entries, downloaded as attachments
// with safe headers) and canned responses picked in the console with a "/" shortcut.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const { startCluster, launchBrowser, agentToken, eventually } = require('./harness');
const P = require('./pages');

// A 1x1 PNG.
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==', 'base64');

let cluster, browser, A, B, ap, vp, chatId, token;
let noFiles = null;
let noCanned = null;

before(async () => {
  cluster = await startCluster({ name: 'files' });
  [A, B] = cluster.nodes;
  if (!(await P.hasRoute(A, 'POST', '/api/chats/x/files?name=a.txt'))) noFiles = 'the node has no POST /api/chats/{id}/files yet';
  if (!(await P.hasRoute(B, 'GET', '/api/canned'))) noCanned = 'the node has no GET /api/canned yet';
  token = await agentToken(B, cluster.agents[0]);
  browser = await launchBrowser();
  // No e-mail given: a canned response that needs one cannot render for this chat.
  ({ ap, vp, chatId } = await P.runningChat(browser, { agentNode: B, agent: cluster.agents[0], visitorNode: A, visitor: { name: 'Carla', question: 'Here is a screenshot' } }));
});

after(async () => {
  if (browser) await browser.close();
  if (cluster) await cluster.stop();
});

test('files both ways: the visitor sends a PNG, the agent a text file; downloads are attachments', async (t) => {
  if (noFiles) throw new Error(noFiles);
  const pane = P.chatPane(ap, chatId);
  // The visitor attaches with the keyboard-reachable button's file input.
  assert.equal(await vp.getByTestId('sb-attach').getAttribute('aria-label'), 'Attach a file');
  await vp.getByTestId('sb-file').setInputFiles({ name: 'dot.png', mimeType: 'image/png', buffer: PNG });
  const link = pane.locator('[data-event="file"][data-seq]').getByTestId('file-link');
  await link.waitFor({ timeout: P.T });
  assert.equal(await link.textContent(), 'dot.png');
  assert.equal(await link.getAttribute('download'), 'dot.png');
  // The console's link never carries the agent token: a click asks the node for a signed
  // download link (a minute long, for this agent and this file) and follows it.
  assert.doesNotMatch(await link.getAttribute('href'), /token=/);
  const [download] = await Promise.all([ap.waitForEvent('download', { timeout: P.T }), link.click()]);
  assert.doesNotMatch(download.url(), /token=/);
  assert.match(download.url(), /[?&]sig=/);
  assert.equal(download.suggestedFilename(), 'dot.png');
  assert.deepEqual(fs.readFileSync(await download.path()), PNG);
  const res = await ap.request.get(download.url());
  assert.equal(res.status(), 200);
  assert.match(res.headers()['content-disposition'] || '', /^attachment/);
  assert.equal(res.headers()['x-content-type-options'], 'nosniff');
  assert.deepEqual(Buffer.from(await res.body()), PNG);
  // The visitor's own entry links to the same file.
  await vp.getByTestId('sb-messages').locator('[data-event="file"][data-seq]').getByTestId('file-link').waitFor({ timeout: P.T });

  await pane.getByTestId('chat-file').setInputFiles({ name: 'notes <b>.txt', mimeType: 'text/plain', buffer: Buffer.from('hello notes') });
  const vlink = vp.getByTestId('sb-messages').locator('[data-event="file"][data-author="agent"]').getByTestId('file-link');
  await vlink.waitFor({ timeout: P.T });
  assert.equal(await vlink.textContent(), 'notes <b>.txt');
  const vres = await vp.request.get(await vlink.getAttribute('href'));
  assert.equal(vres.status(), 200);
  assert.match(vres.headers()['content-disposition'] || '', /^attachment/);
  assert.equal(vres.headers()['x-content-type-options'], 'nosniff');
  assert.equal(await vres.text(), 'hello notes');
  assert.equal(await vp.getByTestId('sb-messages').locator('b, script').count(), 0);
  // The only images are thumbnails of image files (the PNG), none for the text file.
  assert.equal(await vp.getByTestId('sb-messages').locator('img').count(), await vp.getByTestId('sb-messages').locator('[data-testid="file-thumb"] img').count());
  await P.shot(vp, 'widget-files');
  P.assertNoErrors(vp, ap);
});

test('a file type the node refuses: plain words, and the picker offers only the allowed types', async (t) => {
  if (noFiles) throw new Error(noFiles);
  // From the node's files.allowed_types (default: image/, PDF, text, ZIP).
  assert.equal(await vp.getByTestId('sb-file').getAttribute('accept'), 'image/*,application/pdf,text/plain,application/zip');
  await vp.getByTestId('sb-file').setInputFiles({ name: 'run.exe', mimeType: 'application/x-msdownload', buffer: Buffer.from('MZ') });
  const error = vp.getByTestId('sb-error');
  await error.filter({ hasText: 'This kind of file cannot be sent here' }).waitFor({ timeout: P.T });
  const text = await error.textContent();
  assert.match(text, /images, PDF documents, text files or ZIP archives/);
  assert.doesNotMatch(text, /application\/|allowed_types|x-msdownload/);
  // A declared type the node refuses on its content says the same, never the node's wording.
  await error.evaluate((e) => { e.hidden = true; e.textContent = ''; });
  await vp.getByTestId('sb-file').setInputFiles({ name: 'fake.pdf', mimeType: 'application/pdf', buffer: Buffer.from('not a pdf') });
  await eventually(async () => /cannot be sent here/.test(await error.textContent()) && !(await error.isHidden()), { what: 'the plain refusal of a fake PDF' });
  assert.doesNotMatch(await error.textContent(), /application\/pdf|files\.allowed_types/);
  P.assertNoErrors(vp, ap);
});

test('canned response: "/" opens the picker, the shortcut picks it, placeholders are filled', async (t) => {
  if (noCanned) throw new Error(noCanned);
  const r = await fetch(`${B.url}/api/canned`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
    body: JSON.stringify({ title: 'Greeting', shortcut: 'greet', text: 'Hello {visitor_name}, this is {agent_name}.' })
  });
  assert.ok(r.ok, `create canned: ${r.status} ${await r.text()}`);
  const pane = P.chatPane(ap, chatId);
  const input = pane.getByTestId('chat-input');
  await input.fill('');
  await input.pressSequentially('/gre', { delay: 30 });
  const option = pane.getByTestId('canned-option').filter({ hasText: '/greet' });
  await option.waitFor({ timeout: P.T });
  assert.equal(await option.getAttribute('aria-selected'), 'true');
  await P.shot(ap, 'console-canned');
  await input.press('Enter');
  await eventually(async () => (await input.inputValue()) === 'Hello Carla, this is Agent 1.', { what: 'the rendered canned text' });
  await input.press('Enter');
  await vp.getByTestId('sb-messages').locator('[data-author="agent"]').filter({ hasText: 'Hello Carla, this is Agent 1.' }).waitFor({ timeout: P.T });

  // Another one made in the console's own form; it needs the visitor's e-mail.
  await ap.getByTestId('nav-canned').click();
  await ap.getByTestId('canned-admin-item').filter({ hasText: '/greet' }).waitFor({ timeout: P.T });
  await ap.getByTestId('canned-title').fill('Confirm e-mail');
  await ap.getByTestId('canned-shortcut').fill('/mailme');
  await ap.getByTestId('canned-text').fill('We will write to {visitor_email}.');
  await ap.getByTestId('canned-save').click();
  await ap.getByTestId('canned-status').filter({ hasText: 'Saved' }).waitFor({ timeout: P.T });
  await ap.getByTestId('canned-admin-item').filter({ hasText: '/mailme' }).waitFor({ timeout: P.T });
  // An unknown placeholder is refused with the node's message.
  await ap.getByTestId('canned-new').click();
  await ap.getByTestId('canned-title').fill('Broken');
  await ap.getByTestId('canned-shortcut').fill('broken');
  await ap.getByTestId('canned-text').fill('Hi {nope}');
  await ap.getByTestId('canned-save').click();
  await ap.getByTestId('canned-status').filter({ hasText: 'unknown placeholder' }).waitFor({ timeout: P.T });
  await P.shot(ap, 'console-canned-admin');
  await ap.getByTestId('nav-chats').click();

  // No e-mail in this chat: the node's message is shown, the composer is left empty.
  await input.pressSequentially('/mail', { delay: 30 });
  await pane.getByTestId('canned-option').filter({ hasText: '/mailme' }).click();
  await pane.getByTestId('chat-note').filter({ hasText: 'visitor_email' }).waitFor({ timeout: P.T });
  assert.equal(await input.inputValue(), '');
  P.assertNoErrors(vp, ap);
});

test('a widget embedded on another origin uploads a file (CORS on the upload route)', async (t) => {
  if (noFiles) throw new Error(noFiles);
  const pre = await fetch(`${A.url}/api/chats/x/files?name=a.txt`, {
    method: 'OPTIONS',
    headers: { Origin: 'http://localhost:1', 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'authorization,content-type' }
  });
  if (!pre.headers.get('access-control-allow-origin')) {
    throw new Error(`the node answers no CORS preflight on POST /api/chats/{id}/files (OPTIONS: ${pre.status}), so a widget on another site cannot upload`);
  }
  const http = require('node:http');
  const shop = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html' });
    res.end(`<!doctype html><html><body><h1>Shop</h1><script src="${A.url}/widget.js" data-queue="general" async></script></body></html>`);
  });
  await new Promise((r) => shop.listen(0, '127.0.0.1', r));
  try {
    const page = await P.newPage(await browser.newContext());
    await page.goto(`http://localhost:${shop.address().port}/`);
    await P.requestChat(page, { name: 'Otto', question: 'From the shop' });
    const id = await P.acceptOffer(ap, 'Otto');
    await page.getByTestId('sb-input').waitFor({ timeout: P.T });
    await page.getByTestId('sb-file').setInputFiles({ name: 'shop.txt', mimeType: 'text/plain', buffer: Buffer.from('from the shop') });
    await P.chatPane(ap, id).getByTestId('file-link').filter({ hasText: 'shop.txt' }).waitFor({ timeout: P.T });
    await P.agentEnd(ap, id);
    await P.decide(ap, id, 'trash');
    P.assertNoErrors(page, ap);
  } finally {
    shop.close();
  }
});
