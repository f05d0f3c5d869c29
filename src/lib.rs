//! Switchboard: a live-chat cluster of identical, stateless nodes sharing Redis.
//!
//! # Layout
//! - [`config`]: the typed settings tree and its validation.
//! - [`protocol`]: wire frames, codec and error codes (pure, no I/O).
//! - `gateway`: the WebSocket edge: upgrade, limits, auth, a task per connection, dispatch,
//!   paged replays and catch-ups from the chats' streams.
//! - `api`: HTTP/JSON handlers (login and sessions, the admin API for agents, interactions and
//!   their history search, canned replies, files and their signed links, health).
//! - `chat`: the domain: access, routing, ending, messages, timers, fan-out, gap-free delivery
//!   around subscription lapses, Redis's epoch, flush, agent sessions and admin changes to
//!   agents.
//! - `redis`: everything that speaks to Redis, one file per concern, with its Lua scripts.
//! - [`store`]: the durable SQL store (SQLite or PostgreSQL).
//! - `metrics`: the Prometheus registry.
//! - [`app`]: wires the parts together and runs a node.
#![forbid(unsafe_code)]

pub mod api;
pub mod app;
pub mod chat;
pub mod config;
pub mod gateway;
pub mod metrics;
pub mod protocol;
pub mod redis;
pub mod store;
pub mod web;
