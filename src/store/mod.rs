//! The durable SQL store.
