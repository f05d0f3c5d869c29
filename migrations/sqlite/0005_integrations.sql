-- Outgoing webhooks and the audit log, SQLite flavour. Timestamps are Unix milliseconds.

-- An endpoint an admin registered. `events` is a comma-separated list of event types.
-- `consecutive_failures` counts failed attempts since the last success; the endpoint is
-- disabled (`enabled` 0, `disabled_reason` set) when it reaches `webhooks.disable_after_failures`.
CREATE TABLE webhook_endpoints (
    id                    INTEGER PRIMARY KEY AUTOINCREMENT,
    url                   TEXT NOT NULL,
    secret                TEXT NOT NULL,
    events                TEXT NOT NULL,
    description           TEXT NOT NULL DEFAULT '',
    enabled               INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    consecutive_failures  INTEGER NOT NULL DEFAULT 0,
    disabled_reason       TEXT,
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL
);

-- Each event as it was sent (the exact body), kept for retries and redeliveries until the
-- retention of the delivery log removes it. `chat_id` lets an erasure find a contact's events.
CREATE TABLE webhook_events (
    id          TEXT PRIMARY KEY,
    type        TEXT NOT NULL,
    chat_id     TEXT,
    created_at  INTEGER NOT NULL,
    body        TEXT NOT NULL
);
CREATE INDEX webhook_events_created ON webhook_events (created_at);
CREATE INDEX webhook_events_chat ON webhook_events (chat_id);

-- One row per delivery attempt.
CREATE TABLE webhook_deliveries (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint_id  INTEGER NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id     TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    attempt      INTEGER NOT NULL,
    at           INTEGER NOT NULL,
    outcome      TEXT NOT NULL,
    status       INTEGER,
    error        TEXT,
    duration_ms  INTEGER NOT NULL,
    node         TEXT NOT NULL
);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id DESC);
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id, endpoint_id);
CREATE INDEX webhook_deliveries_at ON webhook_deliveries (at);

-- Admin and supervisor actions. `actor_id` is NULL for the system (retention, an endpoint
-- disabled after failures). `detail` is a JSON object of kinds and counts, never erased data.
CREATE TABLE audit_log (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at        INTEGER NOT NULL,
    actor_id  INTEGER,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    target    TEXT NOT NULL DEFAULT '',
    detail    TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_action ON audit_log (action, id DESC);
