// Development aid: with SWITCHBOARD_E2E_ASSETS=../../src/web the harness puts this small front
// before each node. It serves the web assets straight from the source tree (the same paths and
// content types the node serves, see src/web/README.md) and passes everything else, WebSocket
// upgrades included, to the node. Lets the widget and console be tested without a rebuild.
'use strict';

const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const path = require('node:path');

const JS = 'text/javascript; charset=utf-8';
const HTML = 'text/html; charset=utf-8';
const CSS = 'text/css; charset=utf-8';

function table(dir) {
  const f = (p) => () => fs.readFileSync(path.join(dir, p), 'utf8');
  const widget = () => `(function(){\n${f('shared/socket.js')()}\n${f('shared/transcript.js')()}\n${f('widget.js')()}\n})();\n`;
  const t = {
    '/widget.js': [JS, widget],
    '/console/': [HTML, f('console/index.html')],
    '/console/console.css': [CSS, f('console/console.css')],
    '/console/socket.js': [JS, f('shared/socket.js')],
    '/console/transcript.js': [JS, f('shared/transcript.js')],
    '/demo/': [HTML, f('demo/index.html')]
  };
  for (const m of ['console', 'strings', 'api', 'offers', 'chats', 'history', 'visitors']) t[`/console/${m}.js`] = [JS, f(`console/${m}.js`)];
  for (const p of ['index', 'pricing', 'contact']) t[`/demo/${p}.html`] = [HTML, f(`demo/${p}.html`)];
  return t;
}

/** Starts a front for the node at `target` ({host, port}); resolves to the server. */
function startFront(dir, target) {
  const routes = table(dir);
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    if (req.method === 'GET' && (url.pathname === '/console' || url.pathname === '/demo')) {
      res.writeHead(308, { Location: `${url.pathname}/` });
      res.end();
      return;
    }
    const r = req.method === 'GET' && routes[url.pathname];
    if (r) {
      res.writeHead(200, { 'Content-Type': r[0], 'X-Content-Type-Options': 'nosniff', 'Cache-Control': 'no-cache' });
      res.end(r[1]());
      return;
    }
    const up = http.request({ host: target.host, port: target.port, method: req.method, path: req.url, headers: req.headers }, (ur) => {
      res.writeHead(ur.statusCode, ur.headers);
      ur.pipe(res);
    });
    up.on('error', () => {
      res.writeHead(502);
      res.end();
    });
    req.pipe(up);
  });
  server.on('upgrade', (req, socket, head) => {
    const up = net.connect(target.port, target.host, () => {
      let raw = `${req.method} ${req.url} HTTP/1.1\r\n`;
      for (let i = 0; i < req.rawHeaders.length; i += 2) raw += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
      up.write(`${raw}\r\n`);
      if (head && head.length) up.write(head);
      up.pipe(socket);
      socket.pipe(up);
    });
    const done = () => {
      up.destroy();
      socket.destroy();
    };
    up.on('error', done);
    socket.on('error', done);
    up.on('close', done);
    socket.on('close', done);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

module.exports = { startFront };
