// A TCP load balancer the browser tests put in front of the nodes, as a deployment has: each
// new connection goes to one backend, the connection stays there. It starts pinned to the
// first backend (so a test knows where its clients are) and can switch to round robin; it has
// no health checks, like a real balancer in the seconds before its checks notice a stalled
// node, so a client that reconnects may be sent to the stalled node again and must give that
// attempt up by itself. It records every connection (backend, time, and the WebSocket path
// when the first bytes are an upgrade request) for the test's figures.
'use strict';

const net = require('node:net');

/** backends: [{ name, port }]. Resolves to { url, port, roundRobin(), log, close() }. */
function startBalancer(backends) {
  const sockets = new Set();
  let next = 0;
  let pinned = true;
  const log = [];
  const server = net.createServer((client) => {
    const backend = backends[pinned ? 0 : next++ % backends.length];
    const entry = { backend: backend.name, at: Date.now(), path: null };
    log.push(entry);
    const upstream = net.connect(backend.port, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.setNoDelay(true);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
    }
    client.once('data', (first) => {
      const m = /^GET (\/ws\/[a-z]+)/.exec(first.toString('latin1', 0, 64));
      if (m) entry.path = m[1];
    });
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  return new Promise((resolve, reject) => {
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      resolve({
        port,
        url: `http://127.0.0.1:${port}`,
        log,
        /** New connections go to each backend in turn, starting with the first. */
        roundRobin() {
          pinned = false;
          next = 0;
        },
        close() {
          for (const s of sockets) s.destroy();
          return new Promise((r) => server.close(() => r()));
        }
      });
    });
  });
}

module.exports = { startBalancer };
