//! Switchboard: a live-chat cluster of identical, stateless nodes sharing Redis.
//!
//! # Layout
//! - [`config`]: the typed settings tree and its validation.
//! - [`protocol`]: wire frames, codec and error codes (pure, no I/O).
//! - `gateway`: the WebSocket edge: upgrade, limits, auth, a task per connection, dispatch.
//! - `api`: HTTP/JSON handlers: logins, admin, history, canned replies, files, widget, health.
//! - `chat`: the domain: routing, ending, messages, timers, fan-out, delivery, flush, sessions.
//! - `redis`: everything that speaks to Redis, one file per concern, with its Lua scripts.
//! - [`store`]: the durable SQL store (SQLite or PostgreSQL) and file storage.
//! - `metrics`: the Prometheus registry.
//! - `web`: the widget, console and demo site, embedded in the binary and served by every node.
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
