"use strict";
// The Socket.IO peer of Switchboard's benchmarks: a minimal chat relay on Socket.IO with the
// official Redis adapter, so that several processes share rooms through Redis.
//
//   PORT=19080 REDIS_URL=redis://127.0.0.1:6379 node server.js [classic|sharded]
//
// ADAPTER (or the first argument) picks the adapter: `classic` is `createAdapter` (PUBLISH /
// SUBSCRIBE), `sharded` is `createShardedAdapter` (Redis 7 sharded pub/sub, SPUBLISH /
// SSUBSCRIBE). A client connects with `auth` (or query) `{ role: "visitor" | "agent",
// room: "<id>" }`; it joins the room `chat-<id>`, and each `msg` event it emits goes to
// everyone else in that room (`socket.to(room).emit("msg", payload)`), on this process or,
// through Redis, on another one. A client without a room just stays connected.
// Listens on 127.0.0.1 only; prints one ready line; exits on SIGTERM or SIGINT.

const http = require("node:http");
const { Server } = require("socket.io");
const { createClient } = require("redis");
const { createAdapter, createShardedAdapter } = require("@socket.io/redis-adapter");

const HOST = "127.0.0.1";
const mode = String(process.argv[2] || process.env.ADAPTER || "classic").toLowerCase();
const port = Number(process.env.PORT);
const redisUrl = process.env.REDIS_URL || "redis://127.0.0.1:6379";
// `dynamic` (the adapter's default) gives each public room its own sharded channel.
const subscriptionMode = process.env.SUBSCRIPTION_MODE || "dynamic";

function fail(msg, code) {
  console.error(`socketio-peer: ${msg}`);
  process.exit(code);
}

async function main() {
  if (mode !== "classic" && mode !== "sharded") {
    fail(`unknown adapter "${mode}" (use classic or sharded)`, 64);
  }
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    fail("set PORT to the port to listen on", 64);
  }

  const pubClient = createClient({ url: redisUrl });
  const subClient = pubClient.duplicate();
  pubClient.on("error", (e) => console.error(`socketio-peer: redis (pub): ${e.message}`));
  subClient.on("error", (e) => console.error(`socketio-peer: redis (sub): ${e.message}`));
  await Promise.all([pubClient.connect(), subClient.connect()]);

  const adapter =
    mode === "sharded"
      ? createShardedAdapter(pubClient, subClient, { subscriptionMode })
      : createAdapter(pubClient, subClient);

  const httpServer = http.createServer();
  const io = new Server(httpServer, {
    adapter,
    serveClient: false,
    // Several processes without sticky sessions: WebSocket only (no long-polling).
    transports: ["websocket"],
  });

  io.use((socket, next) => {
    const auth = socket.handshake.auth || {};
    const query = socket.handshake.query || {};
    const role = auth.role ?? query.role;
    if (role !== "visitor" && role !== "agent") {
      return next(new Error("role must be visitor or agent"));
    }
    const id = auth.room ?? query.room;
    socket.data.room = id === undefined || id === null || id === "" ? null : `chat-${id}`;
    next();
  });

  io.on("connection", (socket) => {
    const room = socket.data.room;
    if (room === null) {
      return;
    }
    socket.join(room);
    socket.on("msg", (payload) => {
      socket.to(room).emit("msg", payload);
    });
  });

  await new Promise((resolve, reject) => {
    httpServer.once("error", reject);
    httpServer.listen(port, HOST, resolve);
  });
  const detail = mode === "sharded" ? ` subscriptionMode=${subscriptionMode}` : "";
  console.log(
    `socketio-peer ready: adapter=${mode}${detail} listen=http://${HOST}:${port} pid=${process.pid} node=${process.version}`,
  );

  let closing = false;
  const shutdown = (signal) => {
    if (closing) {
      return;
    }
    closing = true;
    console.log(`socketio-peer: ${signal}, closing`);
    // Whatever happens, be gone within 5 seconds.
    setTimeout(() => process.exit(0), 5000).unref();
    io.close(() => {
      Promise.allSettled([pubClient.quit(), subClient.quit()]).then(() => process.exit(0));
    });
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
}

main().catch((e) => fail(e && e.stack ? e.stack : String(e), 1));
