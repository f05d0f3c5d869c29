// Images in a chat across two nodes (visitor on A, agent on B): a PNG dropped on the widget and
// one pasted into the console show as thumbnails on both sides and preview large on a click;
// the node serves images inline only for raster types (a text file asked for as an image is
// refused) and every other file stays a download link.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startCluster, launchBrowser, eventually } = require('./harness');
const P = require('./pages');

// A 1x1 PNG.
const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==';

let cluster, browser, A, B, ap, vp, chatId;

/** A DataTransfer holding one file, made in `page` (drops and pastes carry one). */
function fileTransfer(page, name, type, base64) {
  return page.evaluateHandle(([n, t, b]) => {
    const dt = new DataTransfer();
    dt.items.add(new File([Uint8Array.from(atob(b), (c) => c.charCodeAt(0))], n, { type: t }));
    return dt;
  }, [name, type, base64]);
}

/** Waits until the thumbnail's image has loaded (decoded pixels, not a broken icon). */
async function loaded(thumb, what) {
  await thumb.waitFor({ timeout: P.T });
  await eventually(() => thumb.locator('img').evaluate((i) => i.complete && i.naturalWidth > 0), { what });
}

before(async () => {
  cluster = await startCluster({ name: 'images' });
  [A, B] = cluster.nodes;
  browser = await launchBrowser();
  ({ ap, vp, chatId } = await P.runningChat(browser, { agentNode: B, agent: cluster.agents[0], visitorNode: A, visitor: { name: 'Ines', question: 'Look at this' }, agentViewport: { width: 1366, height: 768 }, visitorViewport: { width: 1280, height: 800 } }));
});

after(async () => {
  if (browser) await browser.close();
  if (cluster) await cluster.stop();
});

test('a PNG dropped on the widget: thumbnails on both sides, previews on a click', async () => {
  const dt = await fileTransfer(vp, 'drop.png', 'image/png', PNG);
  await vp.getByTestId('sb-pane').dispatchEvent('dragenter', { dataTransfer: dt });
  assert.match(await vp.getByTestId('sb-pane').getAttribute('class'), /sb-drop/);
  await vp.getByTestId('sb-pane').dispatchEvent('drop', { dataTransfer: dt });
  assert.doesNotMatch(await vp.getByTestId('sb-pane').getAttribute('class'), /sb-drop/);

  const mine = vp.getByTestId('sb-messages').locator('[data-event="file"][data-seq]').getByTestId('file-thumb');
  await loaded(mine, 'the widget thumbnail');
  const src = await mine.locator('img').getAttribute('src');
  assert.match(src, /view=image/);
  // Served in place, as a PNG, never sniffed, sandboxed.
  const res = await vp.request.get(src);
  assert.equal(res.status(), 200);
  assert.equal(res.headers()['content-type'], 'image/png');
  assert.match(res.headers()['content-disposition'], /^inline/);
  assert.equal(res.headers()['x-content-type-options'], 'nosniff');
  await mine.click();
  const big = vp.getByTestId('sb-preview');
  await big.waitFor({ timeout: P.T });
  assert.equal(await vp.getByTestId('sb-preview-image').getAttribute('src'), src);
  await P.shot(vp, 'widget-image-preview');
  await vp.keyboard.press('Escape');
  await big.waitFor({ state: 'hidden', timeout: P.T });

  // The console loads its thumbnail through a signed link: no token in the URL.
  const pane = P.chatPane(ap, chatId);
  const theirs = pane.locator('[data-event="file"][data-seq]').getByTestId('file-thumb');
  await loaded(theirs, 'the console thumbnail');
  const csrc = await theirs.locator('img').getAttribute('src');
  assert.match(csrc, /[?&]sig=/);
  assert.doesNotMatch(csrc, /token=/);
  await theirs.click();
  await ap.getByTestId('preview').waitFor({ timeout: P.T });
  await eventually(() => ap.getByTestId('preview-image').evaluate((i) => i.complete && i.naturalWidth > 0), { what: 'the console preview' });
  await P.shot(ap, 'console-image-preview');
  await ap.keyboard.press('Escape');
  await ap.getByTestId('preview').waitFor({ state: 'hidden', timeout: P.T });
  P.assertNoErrors(vp, ap);
});

test('pasted into the console and dropped there: images get thumbnails, other files stay links', async () => {
  const pane = P.chatPane(ap, chatId);
  await pane.getByTestId('chat-input').evaluate((el, b) => {
    const dt = new DataTransfer();
    dt.items.add(new File([Uint8Array.from(atob(b), (c) => c.charCodeAt(0))], 'pasted.png', { type: 'image/png' }));
    el.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
  }, PNG);
  const visitorSide = vp.getByTestId('sb-messages').locator('[data-event="file"][data-author="agent"]');
  await loaded(visitorSide.filter({ hasText: 'pasted.png' }).getByTestId('file-thumb'), 'the pasted image on the widget');

  const dt = await fileTransfer(ap, 'notes.txt', 'text/plain', Buffer.from('hello').toString('base64'));
  await pane.dispatchEvent('drop', { dataTransfer: dt });
  const notes = visitorSide.filter({ hasText: 'notes.txt' });
  await notes.getByTestId('file-link').waitFor({ timeout: P.T });
  assert.equal(await notes.getByTestId('file-thumb').count(), 0);
  // Asked for as an image, a text file is refused.
  const href = await notes.getByTestId('file-link').getAttribute('href');
  const refused = await vp.request.get(`${href}&view=image`);
  assert.equal(refused.status(), 415);
  P.assertNoErrors(vp, ap);
});
