// Starts a real two-node Switchboard cluster for the browser tests: one SQLite store in a temp
// dir, the Redis at SWITCHBOARD_TEST_REDIS_URL under a unique key prefix, agents created with
// the CLI, nodes on free loopback ports. Builds nothing: runs the binary at SWITCHBOARD_BIN.
'use strict';

const { spawn, spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const BIN = path.resolve(__dirname, process.env.SWITCHBOARD_BIN || '../../target/debug/switchboard');
const REDIS_URL = process.env.SWITCHBOARD_TEST_REDIS_URL || 'redis://127.0.0.1:6379';
const ARTIFACTS = path.join(__dirname, 'artifacts');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
  '--disable-sync'
];

fs.mkdirSync(ARTIFACTS, { recursive: true });

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function randomString(n) {
  return crypto.randomBytes(n).toString('base64url').slice(0, n);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Runs the binary to completion; rejects with its output on a non-zero exit. */
function run(args, env, logFile) {
  return new Promise((resolve, reject) => {
    const out = fs.openSync(logFile, 'a');
    const child = spawn(BIN, args, { env, stdio: ['ignore', out, out] });
    child.on('error', (e) => {
      fs.closeSync(out);
      reject(e);
    });
    child.on('exit', (code) => {
      fs.closeSync(out);
      if (code === 0) resolve();
      else reject(new Error(`switchboard ${args.join(' ')} exited with ${code}; see ${logFile}:\n${tail(logFile)}`));
    });
  });
}

function tail(file, n = 30) {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-n).join('\n');
  } catch (e) {
    return '';
  }
}

async function waitReady(node, child, logFile, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`node ${node.name} exited with ${child.exitCode}:\n${tail(logFile)}`);
    try {
      const r = await fetch(`${node.url}/readyz`);
      if (r.status === 200) return;
      last = `status ${r.status}`;
    } catch (e) {
      last = e.message;
    }
    await sleep(100);
  }
  throw new Error(`node ${node.name} not ready after ${timeoutMs} ms (${last}):\n${tail(logFile)}`);
}

/**
 * Starts `nodes` nodes sharing one store and one Redis prefix, with `agents` agents
 * (agent1..agentN, password "secret-password", queue "general", 3 chats each) and `supervisors`
 * supervisors (super1..superN, role supervisor, likewise). `env` overrides settings for this
 * cluster (e.g. a longer grace period).
 */
async function startCluster({ nodes = 2, agents = 1, supervisors = 0, name = 'e2e', env = {} } = {}) {
  if (!fs.existsSync(BIN)) throw new Error(`no server binary at ${BIN}; run cargo build (or set SWITCHBOARD_BIN)`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sb-e2e-'));
  const prefix = `e2e-${randomString(10)}`;
  const base = {
    ...process.env,
    SWITCHBOARD__STORE__URL: `sqlite://${dir}/e2e.db?mode=rwc`,
    SWITCHBOARD__FILES__URL: `file://${dir}/files`,
    SWITCHBOARD__REDIS__URL: REDIS_URL,
    SWITCHBOARD__REDIS__KEY_PREFIX: prefix,
    SWITCHBOARD__AUTH__TOKEN_SECRET: randomString(40),
    SWITCHBOARD__CHAT__VISITOR_GRACE_MS: '3000',
    SWITCHBOARD__CHAT__OFFER_TIMEOUT_MS: '5000',
    SWITCHBOARD__CHAT__AGENT_GRACE_MS: '3000',
    // At most the agent grace period (the node refuses a longer one).
    SWITCHBOARD__CHAT__AGENT_UNROUTABLE_MS: '2000',
    // The keep-alive rule: at most a sixth of the shorter grace period.
    SWITCHBOARD__LIMITS__PING_INTERVAL_MS: '500',
    SWITCHBOARD__SERVER__DRAIN_SECONDS: '3',
    // Restarts should be quick: no load balancer needs the draining listener kept open.
    SWITCHBOARD__SERVER__DRAIN_LISTEN_SECONDS: '0',
    ...env
  };
  const cliLog = path.join(ARTIFACTS, `${name}-cli.log`);
  fs.writeFileSync(cliLog, '');
  const agentList = [];
  for (let i = 1; i <= agents; i++) {
    const a = { username: `agent${i}`, password: 'secret-password', name: `Agent ${i}` };
    await run(['agent', 'add', '--username', a.username, '--password', a.password, '--name', a.name, '--role', 'agent', '--max-chats', '3', '--queues', 'general'], base, cliLog);
    agentList.push(a);
  }
  const supervisorList = [];
  for (let i = 1; i <= supervisors; i++) {
    const a = { username: `super${i}`, password: 'secret-password', name: `Supervisor ${i}` };
    await run(['agent', 'add', '--username', a.username, '--password', a.password, '--name', a.name, '--role', 'supervisor', '--max-chats', '3', '--queues', 'general'], base, cliLog);
    supervisorList.push(a);
  }
  const started = [];
  const cluster = { dir, prefix, nodes: started, agents: agentList, supervisors: supervisorList, stop: () => stopCluster(cluster) };
  try {
    for (let i = 0; i < nodes; i++) {
      const port = await freePort();
      const nodeName = `${name}-${String.fromCharCode(97 + i)}`;
      const node = { name: nodeName, port, url: `http://127.0.0.1:${port}`, logFile: path.join(ARTIFACTS, `${nodeName}.log`), env: null };
      node.env = { ...base, SWITCHBOARD__SERVER__LISTEN: `127.0.0.1:${port}`, SWITCHBOARD__SERVER__NODE_NAME: nodeName };
      fs.writeFileSync(node.logFile, '');
      spawnNode(node);
      started.push(node);
    }
    for (const n of started) await waitReady(n, n.child, n.logFile);
    if (!process.env.SWITCHBOARD_E2E_ASSETS) {
      const r = await fetch(`${started[0].url}/widget.js`);
      if (r.status !== 200) {
        throw new Error(`the node answers ${r.status} for /widget.js: it does not serve src/web yet (see src/web/README.md). ` + 'To test the assets from the source tree meanwhile, set SWITCHBOARD_E2E_ASSETS=../../src/web');
      }
    } else {
      // Serve the web assets from the source tree in front of each node (see assets-front.js).
      const { startFront } = require('./assets-front');
      const dir = path.resolve(__dirname, process.env.SWITCHBOARD_E2E_ASSETS);
      for (const n of started) {
        n.front = await startFront(dir, { host: '127.0.0.1', port: n.port });
        n.backendUrl = n.url;
        n.url = `http://127.0.0.1:${n.front.address().port}`;
      }
    }
  } catch (e) {
    await stopCluster(cluster);
    throw e;
  }
  return cluster;
}

function spawnNode(node) {
  const out = fs.openSync(node.logFile, 'a');
  node.child = spawn(BIN, ['serve'], { env: node.env, stdio: ['ignore', out, out] });
  node.pid = node.child.pid;
  fs.closeSync(out);
}

/** Stops a node (SIGTERM: it drains and closes sockets with 4503) and starts it again on its port. */
async function restartNode(node, { downMs = 0 } = {}) {
  await stopNode(node);
  if (downMs) await sleep(downMs);
  spawnNode(node);
  await waitReady({ name: node.name, url: node.backendUrl || node.url }, node.child, node.logFile);
}

async function stopNode(node) {
  const child = node.child;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  try {
    process.kill(node.pid, 'SIGTERM');
  } catch (e) {
    return;
  }
  const t = setTimeout(() => {
    try {
      process.kill(node.pid, 'SIGKILL');
    } catch (e) {
      /* gone */
    }
  }, 8000);
  await exited;
  clearTimeout(t);
}

async function stopCluster(cluster) {
  for (const n of cluster.nodes) if (n.front) n.front.close();
  await Promise.all(cluster.nodes.map(stopNode));
  await cleanRedis(cluster.prefix);
  fs.rmSync(cluster.dir, { recursive: true, force: true });
}

/**
 * Cuts the node's subscriber connection to Redis (a failover or a network blip, as the node
 * sees it): finds it by the client name the node logged at start (the last start, after a
 * restart) and kills it with CLIENT KILL ID. Throws when it cannot.
 */
function killSubscriberConnection(node) {
  const names = [...fs.readFileSync(node.logFile, 'utf8').matchAll(/CLIENT LIST name.*?subscriber.*?"([^"]+)"/g)];
  if (!names.length) throw new Error(`${node.name} logged no subscriber name`);
  const name = names[names.length - 1][1];
  const cli = (...args) => {
    const r = spawnSync('redis-cli', ['-u', REDIS_URL, ...args], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`redis-cli ${args.join(' ')}: ${r.stderr || r.error}`);
    return r.stdout;
  };
  const line = cli('CLIENT', 'LIST').split('\n').find((l) => l.split(' ').includes(`name=${name}`));
  const id = line && line.split(' ').find((kv) => kv.startsWith('id='));
  if (!id) throw new Error(`no Redis client named ${name}`);
  const killed = cli('CLIENT', 'KILL', 'ID', id.slice(3)).trim();
  if (killed !== '1') throw new Error(`CLIENT KILL ID ${id}: ${killed}`);
}

/**
 * Redis loses this cluster's data, as a restart without persistence or a FLUSHALL would (only
 * this run's prefix is deleted: the Redis is shared). Throws when redis-cli fails.
 */
function loseRedisData(cluster) {
  const script = `redis-cli -u "$U" --scan --pattern "$P*" | xargs -r -n 200 redis-cli -u "$U" DEL >/dev/null`;
  const r = spawnSync('sh', ['-c', script], { env: { ...process.env, U: REDIS_URL, P: cluster.prefix }, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`deleting ${cluster.prefix}*: ${r.stderr || r.error}`);
}

/** One series of the node's /metrics, by its name with labels as exposed (0 when absent). */
async function metric(node, series) {
  const text = await (await fetch(`${node.backendUrl || node.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line ? Number(line.split(' ').pop()) : 0;
}

/** Best effort: remove this run's keys (redis-cli may be missing; then they just stay). */
function cleanRedis(prefix) {
  return new Promise((resolve) => {
    const script = `redis-cli -u "$U" --scan --pattern "$P*" | xargs -r -n 200 redis-cli -u "$U" DEL >/dev/null`;
    const child = spawn('sh', ['-c', script], { env: { ...process.env, U: REDIS_URL, P: prefix }, stdio: 'ignore' });
    child.on('error', () => resolve());
    child.on('exit', () => resolve());
  });
}

async function launchBrowser() {
  const { chromium } = require('playwright-core');
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}

/** An agent's HTTP token, for checks through the API. */
async function agentToken(node, agent) {
  const r = await fetch(`${node.url}/api/agent/login`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username: agent.username, password: agent.password })
  });
  if (!r.ok) throw new Error(`login failed: ${r.status} ${await r.text()}`);
  return (await r.json()).token;
}

async function getJson(node, path, token) {
  const r = await fetch(`${node.url}${path}`, { headers: { Authorization: `Bearer ${token}` } });
  if (!r.ok) throw new Error(`GET ${path}: ${r.status} ${await r.text()}`);
  return r.json();
}

/** Polls `fn` until it returns a truthy value. */
async function eventually(fn, { timeout = 15000, every = 200, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await sleep(every);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
}

module.exports = { startCluster, stopCluster, stopNode, restartNode, killSubscriberConnection, loseRedisData, metric, launchBrowser, agentToken, getJson, eventually, sleep, ARTIFACTS };
