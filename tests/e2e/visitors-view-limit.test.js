// A node whose `abuse.visitors_in_view` is below the rows a console renders: the console names
// only as many as the node takes (it learns the number from `visitors_snapshot.view_max`), the
// rows on screen first, so the agent sees whole records instead of a refused view.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startCluster, launchBrowser, eventually } = require('./harness');
const P = require('./pages');
const { seed } = require('./site-visitors');

const VISITORS = 60;
const IN_VIEW = 4;

let cluster, browser, ap;

before(async () => {
  cluster = await startCluster({ name: 'visitors-view-limit', env: { SWITCHBOARD__ABUSE__VISITORS_IN_VIEW: String(IN_VIEW) } });
  await seed(cluster.prefix, VISITORS);
  browser = await launchBrowser();
  ap = await P.newPage(await browser.newContext({ viewport: { width: 1400, height: 820 } }));
  // The console's `view_visitors` frames and the node's `error` frames, as they cross.
  await ap.addInitScript(() => {
    window.__views = [];
    window.__errors = [];
    const Socket = window.WebSocket;
    window.WebSocket = class extends Socket {
      constructor(...args) {
        super(...args);
        this.addEventListener('message', (m) => {
          if (typeof m.data === 'string' && m.data.includes('"type":"error"')) window.__errors.push(m.data);
        });
      }
      send(data) {
        if (typeof data === 'string' && data.includes('"view_visitors"')) window.__views.push(JSON.parse(data).ids);
        super.send(data);
      }
    };
  });
  await P.agentLogin(ap, cluster.nodes[1], cluster.agents[0]);
});

after(async () => {
  if (browser) await browser.close();
  if (cluster) await cluster.stop();
});

test('the console names no more visitors than the node takes, those on screen first', async () => {
  await ap.getByTestId('nav-visitors').click();
  await eventually(async () => (await ap.getByTestId('visitors-count').textContent()) === `(${VISITORS})`, { what: `${VISITORS} visitors listed` });
  // More rows rendered than the node lets one view name.
  assert.ok((await ap.getByTestId('visitor-row').count()) > IN_VIEW);
  // Scrolled down, so that rows of the overscan sit above the screen.
  await ap.getByTestId('visitors-scroll').evaluate((el) => (el.scrollTop = 20 * 36));
  await ap.locator('[data-testid="visitor-row"][data-index="20"]').waitFor({ timeout: P.T });
  const row = (id) => ap.locator(`[data-testid="visitor-row"][data-visitor-id="${id}"]`);
  // The last view names as many as the node takes, and those rows are shown whole.
  let named = [];
  await eventually(async () => {
    const last = await ap.evaluate(() => {
      const ids = window.__views[window.__views.length - 1] || [];
      const shown = (id) => document.querySelector(`[data-testid="visitor-row"][data-visitor-id="${id}"]:not([data-pending])`);
      return { ids, whole: ids.every(shown) };
    });
    named = last.ids;
    return named.length === IN_VIEW && !named.includes('seed000000') && last.whole;
  }, { what: `${IN_VIEW} rows of the scrolled screen named and shown whole` });
  for (const ids of await ap.evaluate(() => window.__views)) assert.ok(ids.length <= IN_VIEW, `a view of ${ids.length} visitors`);
  // They are the first rows on screen, not the overscan above it.
  const screenTop = (await ap.getByTestId('visitors-scroll').boundingBox()).y;
  const firstRendered = await ap.getByTestId('visitor-row').first().getAttribute('data-visitor-id');
  assert.ok(!named.includes(firstRendered), `the overscan's first row ${firstRendered} named`);
  for (const id of named) {
    const box = await row(id).boundingBox();
    assert.ok(box.y + box.height > screenTop, `${id} above the screen`);
    assert.match(await row(id).getByTestId('visitor-url').getAttribute('title'), /^https:\/\/shop\.example\/products\/\d+\?ref=campaign$/);
  }
  assert.deepEqual(await ap.evaluate(() => window.__errors), []);
  P.assertNoErrors(ap);
});
