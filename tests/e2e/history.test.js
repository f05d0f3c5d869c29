// The console's past-interactions search: two chats from the demo site (node A) answered in
// the console (node B), then found by a word of a message, by e-mail, by agent and by date,
// each row showing visitor, e-mail (typed, so marked unverified), agent, queue and duration;
// the detail shows the pre-chat e-mail too. Search text that looks like query syntax is only
// ever a word.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startCluster, launchBrowser, agentToken, getJson, eventually } = require('./harness');
const P = require('./pages');

let cluster, browser, A, B, agent, token;
let agentPage, visitorPage;

before(async () => {
  cluster = await startCluster({ name: 'history' });
  [A, B] = cluster.nodes;
  agent = cluster.agents[0];
  token = await agentToken(B, agent);
  browser = await launchBrowser();
  agentPage = await P.newPage(await browser.newContext({ viewport: { width: 1366, height: 768 } }));
  await P.agentLogin(agentPage, B, agent);
  await P.setStatus(agentPage, 'available');
  visitorPage = await P.newPage(await browser.newContext({ viewport: { width: 1100, height: 760 } }));
  await P.openDemo(visitorPage, A);
});

after(async () => {
  if (browser) await browser.close();
  if (cluster) await cluster.stop();
});

/** A chat from the pre-chat form to "Create interaction", with one reply from the agent. */
async function chat({ name, email, question, reply }) {
  await P.requestChat(visitorPage, { name, email, question });
  const chatId = await P.acceptOffer(agentPage, name);
  await P.agentSend(agentPage, chatId, reply);
  await visitorPage.getByTestId('sb-messages').locator('[data-author="agent"]').filter({ hasText: reply }).waitFor({ timeout: P.T });
  await P.agentEnd(agentPage, chatId);
  await P.decide(agentPage, chatId, 'create');
  // Stored (and indexed) by the flush on whichever node runs it.
  await eventually(async () => {
    const page = await getJson(B, `/api/history?q=${encodeURIComponent(reply.split(' ')[0])}`, token);
    return page.items.some((r) => r.chat_id === chatId);
  }, { what: `chat ${chatId} in the history` });
  return chatId;
}

function rows(page) {
  return page.getByTestId('history-list').getByTestId('history-item');
}

async function search(page, fields) {
  const form = page.getByTestId('history-search');
  const details = form.locator('details');
  if (!(await details.evaluate((d) => d.open))) await form.locator('summary').click();
  for (const [testid, value] of Object.entries(fields)) {
    const el = form.getByTestId(testid);
    if ((await el.evaluate((e) => e.tagName)) === 'SELECT') await el.selectOption(value);
    else await el.fill(value);
  }
  await form.getByTestId('history-search-submit').click();
}

/** The chat ids listed, once the list shows `n` rows. */
async function listed(page, n) {
  await eventually(async () => (await rows(page).count()) === n, { what: `${n} history rows` });
  return rows(page).evaluateAll((els) => els.map((e) => e.getAttribute('data-chat-id')));
}

test('search past chats by word, e-mail, agent and date; rows show who, e-mail, agent, queue, duration', async () => {
  const vera = await chat({ name: 'Vera Novak', email: 'vera@example.com', question: 'Where is my parcel?', reply: 'Tracking says Tuesday' });
  const tom = await chat({ name: 'Tom Berg', email: 'tom@example.com', question: 'I need an invoice', reply: 'Invoice sent today' });
  const ap = agentPage;

  await ap.getByTestId('nav-history').click();
  assert.deepEqual(await listed(ap, 2), [tom, vera], 'newest first');
  const veraRow = rows(ap).filter({ hasText: 'Vera Novak' });
  assert.equal(await veraRow.getByTestId('history-visitor').textContent(), 'Vera Novak · vera@example.com (unverified)');
  const meta = await veraRow.getByTestId('history-meta').textContent();
  assert.ok(meta.startsWith(`${agent.name} · general · `), meta);
  assert.match(meta, / (\d+ s|\d+ min) · /, 'a duration');

  // A word of the agent's reply finds only that chat.
  await search(ap, { 'history-q': 'tuesday' });
  assert.deepEqual(await listed(ap, 1), [vera]);
  await rows(ap).first().click();
  const detail = ap.getByTestId('history-detail');
  await detail.getByTestId('history-message').filter({ hasText: 'Tracking says Tuesday' }).waitFor({ timeout: P.T });
  assert.match(await detail.getByTestId('history-message').first().locator('p.muted').textContent(), /vera@example\.com \(unverified\)/);
  await P.shot(ap, 'console-history-search');

  // By e-mail (whole, any case), with the word cleared.
  await search(ap, { 'history-q': '', 'history-email': 'TOM@example.com' });
  assert.deepEqual(await listed(ap, 1), [tom]);

  // By agent and a date range around today; nobody else's chats, none before today.
  const today = new Date();
  const day = (d) => `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
  await search(ap, { 'history-email': '', 'history-agent': agent.username, 'history-from': day(today), 'history-to': day(today) });
  assert.deepEqual(await listed(ap, 2), [tom, vera]);
  const yesterday = new Date(today.getTime() - 86400000);
  await search(ap, { 'history-from': day(yesterday), 'history-to': day(yesterday) });
  await ap.getByTestId('history-list').locator('li.empty').waitFor({ timeout: P.T });
  assert.equal(await rows(ap).count(), 0);

  // Query syntax is searched as words: no error, no match.
  await search(ap, { 'history-from': '', 'history-to': '', 'history-agent': '', 'history-q': '"parcel" OR * NEAR(' });
  await ap.getByTestId('history-list').locator('li.empty').waitFor({ timeout: P.T });
  assert.equal(await ap.getByTestId('history-error').count(), 0);
  // Only the unanswered requests kept automatically: none here.
  await search(ap, { 'history-q': '', 'history-empty': 'true' });
  await ap.getByTestId('history-list').locator('li.empty').waitFor({ timeout: P.T });
  await search(ap, { 'history-empty': 'false', 'history-queue': 'general' });
  assert.deepEqual(await listed(ap, 2), [tom, vera]);
  P.assertNoErrors(visitorPage, ap);
});
