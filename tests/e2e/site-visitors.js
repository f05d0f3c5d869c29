// Site visitors for the console's list tests: records written into Redis the way the nodes
// keep them (`visitor_page.lua`), many at once.
'use strict';

const { spawn } = require('node:child_process');

const REDIS_URL = process.env.SWITCHBOARD_TEST_REDIS_URL || 'redis://127.0.0.1:6379';

/** One command in the Redis protocol, for `redis-cli --pipe`. */
function resp(args) {
  let out = `*${args.length}\r\n`;
  for (const a of args) out += `$${Buffer.byteLength(String(a))}\r\n${a}\r\n`;
  return out;
}

/** Writes `n` visitor records (`seed000000`, ...; visitor i on page `/products/i`) and their
 * places in the list under the cluster's key `prefix`, in the list's order. */
function seed(prefix, n) {
  const now = Date.now();
  let input = '';
  for (let i = 0; i < n; i++) {
    const id = `seed${String(i).padStart(6, '0')}`;
    const seen = now - (n - i) * 10;
    input += resp(['HSET', `${prefix}{r}:visitor:${id}`, 'id', id, 'started_at', seen - 60000, 'last_seen', seen,
      'url', `https://shop.example/products/${i}?ref=campaign`, 'title', `Product ${i} - Shop`, 'ip', `198.51.${(i >> 8) & 255}.${i & 255}`,
      'country', ['DE', 'FR', 'NL', 'US'][i % 4], 'pages', 1 + (i % 7), 'new', i % 3 ? '1' : '0']);
    input += resp(['ZADD', `${prefix}{r}:visitors`, seen, id]);
  }
  return new Promise((resolve, reject) => {
    const child = spawn('redis-cli', ['-u', REDIS_URL, '--pipe'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 && /errors: 0/.test(out) ? resolve() : reject(new Error(`redis-cli --pipe: ${out}`))));
    child.stdin.end(input);
  });
}

module.exports = { seed };
