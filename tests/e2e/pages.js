// Page helpers: what a visitor does on the demo site, what an agent does in the console.
// Locators pierce the widget's open shadow root. Every page records its script errors.
'use strict';

const assert = require('node:assert/strict');
const path = require('node:path');
const { ARTIFACTS } = require('./harness');

const T = 15000;

/** Opens a page that records uncaught errors and console errors in `page.__errors`. */
async function newPage(context) {
  const page = await context.newPage();
  page.__errors = [];
  page.on('pageerror', (e) => page.__errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/WebSocket|Failed to load resource|ERR_CONNECTION/.test(m.text())) page.__errors.push(`console: ${m.text()}`);
  });
  return page;
}

function assertNoErrors(...pages) {
  for (const p of pages) if (!p.isClosed()) assert.deepEqual(p.__errors, [], `script errors on ${p.url()}`);
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`) });
}

// ---- visitor ----

async function openDemo(page, node, file = '') {
  await page.goto(`${node.url}/demo/${file}`);
  await page.getByTestId('sb-chat-button').waitFor({ timeout: T });
}

/** Opens the pane and submits the pre-chat form; waits for the queue position. */
async function requestChat(page, { name, email, question } = {}) {
  const pane = page.getByTestId('sb-pane');
  if (!(await pane.isVisible())) await page.getByTestId('sb-chat-button').click();
  const form = page.getByTestId('sb-form');
  if (!(await form.isVisible())) await page.getByTestId('sb-new-chat').click();
  if (name != null) await page.getByTestId('sb-name').fill(name);
  if (email != null) await page.getByTestId('sb-email').fill(email);
  if (question != null) await page.getByTestId('sb-question').fill(question);
  await page.getByTestId('sb-submit').click();
  await page.getByTestId('sb-queue-position').or(page.getByTestId('sb-input')).first().waitFor({ timeout: T });
}

async function visitorSend(page, text) {
  await page.getByTestId('sb-input').fill(text);
  await page.getByTestId('sb-input').press('Enter');
}

/** The visitor's displayed entries: [{seq, author, text}]. */
async function visitorEntries(page) {
  return page.getByTestId('sb-messages').locator('[data-testid="message"][data-seq]').evaluateAll((els) =>
    els.map((e) => ({ seq: e.getAttribute('data-seq'), author: e.getAttribute('data-author'), text: e.querySelector('[data-testid="message-text"]').textContent }))
  );
}

// ---- agent ----

async function agentLogin(page, node, agent) {
  await page.goto(`${node.url}/console/`);
  await page.getByTestId('login-username').fill(agent.username);
  await page.getByTestId('login-password').fill(agent.password);
  await page.getByTestId('login-submit').click();
  await page.locator('[data-testid="conn-state"][data-state="open"]').waitFor({ timeout: T });
}

async function setStatus(page, status) {
  await page.getByTestId('status-select').selectOption(status);
  await page.locator(`[data-testid="status-select"][data-status="${status}"]`).waitFor({ timeout: T });
}

function offerCard(page, text) {
  const cards = page.getByTestId('offer');
  return text ? cards.filter({ hasText: text }) : cards.first();
}

/** Accepts the offer whose card shows `text`; returns the chat id. */
async function acceptOffer(page, text) {
  const card = offerCard(page, text);
  await card.waitFor({ timeout: T });
  const chatId = await card.getAttribute('data-chat-id');
  await card.getByTestId('offer-accept').click();
  await page.locator(`[data-testid="chat-pane"][data-chat-id="${chatId}"][data-state="active"]`).waitFor({ timeout: T });
  return chatId;
}

function chatPane(page, chatId) {
  return page.locator(`[data-testid="chat-pane"][data-chat-id="${chatId}"]`);
}

async function agentSend(page, chatId, text) {
  const pane = chatPane(page, chatId);
  await pane.getByTestId('chat-input').fill(text);
  await pane.getByTestId('chat-send').click();
}

async function agentEnd(page, chatId) {
  const pane = chatPane(page, chatId);
  const end = pane.getByTestId('chat-end');
  await end.click();
  // The first press asks; the second ends the chat.
  assert.equal(await end.getAttribute('data-confirm'), 'true');
  assert.equal(await end.textContent(), 'End the chat?');
  await end.click();
  await pane.getByTestId('wrapup').waitFor({ timeout: T });
}

/** Picks a wrap-up decision and waits for the tab to close. */
async function decide(page, chatId, decision, interactionId) {
  const pane = chatPane(page, chatId);
  await pane.getByTestId('wrapup').waitFor({ timeout: T });
  if (decision === 'add') {
    await pane.getByTestId('wrapup-add').click();
    const radio = interactionId != null ? pane.locator(`[data-testid="wrapup-interaction"][value="${interactionId}"]`) : pane.getByTestId('wrapup-interaction').first();
    await radio.check({ timeout: T });
    await pane.getByTestId('wrapup-add-confirm').click();
  } else {
    await pane.getByTestId(`wrapup-${decision}`).click();
  }
  await pane.waitFor({ state: 'detached', timeout: T });
}

/** Sends a link (or, with push, a page to open) from the agent's link form. */
async function agentSendUrl(page, chatId, url, { title, push = false } = {}) {
  const pane = chatPane(page, chatId);
  if (!(await pane.getByTestId('chat-link-form').isVisible())) await pane.getByTestId('chat-link').click();
  await pane.getByTestId('chat-link-url').fill(url);
  if (title != null) await pane.getByTestId('chat-link-title').fill(title);
  await pane.getByTestId(push ? 'chat-push-page' : 'chat-link-send').click();
}

/** Visitor asks, the agent accepts: returns the chat id. */
async function startChat(vp, ap, node, { name, email, question } = {}) {
  await openDemo(vp, node);
  await requestChat(vp, { name, email, question });
  return acceptOffer(ap, name);
}

/**
 * A running chat in two browser contexts: `agent` logs in to the console on `agentNode` and
 * goes available, a visitor on `visitorNode` asks with `visitor` ({ name, email, question }),
 * the agent accepts, and the visitor's composer is shown. Resolves to { ap, vp, chatId }.
 */
async function runningChat(browser, { agentNode, agent, visitorNode, visitor, agentViewport = { width: 1280, height: 800 }, visitorViewport = { width: 1100, height: 760 } }) {
  const ap = await newPage(await browser.newContext({ viewport: agentViewport }));
  await agentLogin(ap, agentNode, agent);
  await setStatus(ap, 'available');
  const vp = await newPage(await browser.newContext({ viewport: visitorViewport }));
  const chatId = await startChat(vp, ap, visitorNode, visitor);
  await vp.getByTestId('sb-input').waitFor({ timeout: T });
  return { ap, vp, chatId };
}

/** The agent's token, as the console keeps it in sessionStorage. */
async function consoleToken(page) {
  return page.evaluate(() => JSON.parse(sessionStorage.getItem('sb.agent')).token);
}

/**
 * Asks the node whether it implements a frame: opens a WebSocket from the page with `wsPath`
 * (token included), sends `frame` and resolves to the first reply whose type is in `types`
 * or an `error` frame ({type:'error', message}).
 */
async function probeFrame(page, wsPath, frame, types) {
  return page.evaluate(
    ({ wsPath, frame, types }) =>
      new Promise((resolve) => {
        const ws = new WebSocket(location.origin.replace(/^http/, 'ws') + wsPath);
        const done = (v) => {
          try { ws.close(); } catch (e) { /* closed */ }
          resolve(v);
        };
        setTimeout(() => done({ type: 'timeout' }), 5000);
        ws.onmessage = (ev) => {
          const f = JSON.parse(ev.data);
          if (f.type === 'welcome') ws.send(JSON.stringify(frame));
          else if (f.type === 'error' || types.includes(f.type)) done(f);
        };
        ws.onerror = () => done({ type: 'error', message: 'socket error' });
      }),
    { wsPath, frame, types }
  );
}

/** True when the node has an HTTP route (an unknown route is an empty 404). */
async function hasRoute(node, method, path) {
  const r = await fetch(`${node.url}${path}`, { method, headers: { 'Content-Type': 'application/json' }, body: method === 'GET' ? undefined : '{}' });
  const body = await r.text();
  return !(r.status === 404 && body === '') && r.status !== 405;
}

module.exports = {
  agentSendUrl,
  startChat,
  runningChat,
  consoleToken,
  probeFrame,
  hasRoute,
  newPage,
  assertNoErrors,
  shot,
  openDemo,
  requestChat,
  visitorSend,
  visitorEntries,
  agentLogin,
  setStatus,
  offerCard,
  acceptOffer,
  chatPane,
  agentSend,
  agentEnd,
  decide,
  T
};
