-- Outgoing webhooks and the audit log, PostgreSQL flavour. Timestamps are Unix milliseconds
-- (BIGINT); bodies and details are TEXT holding JSON (the sqlx Any driver cannot bind JSONB).

-- An endpoint an admin registered. `events` is a comma-separated list of event types.
-- `consecutive_failures` counts failed attempts since the last success; the endpoint is
-- disabled (`enabled` false, `disabled_reason` set) when it reaches `webhooks.disable_after_failures`.
CREATE TABLE webhook_endpoints (
    id                    BIGSERIAL PRIMARY KEY,
    url                   TEXT NOT NULL,
    secret                TEXT NOT NULL,
    events                TEXT NOT NULL,
    description           TEXT NOT NULL DEFAULT '',
    enabled               BOOLEAN NOT NULL DEFAULT TRUE,
    consecutive_failures  BIGINT NOT NULL DEFAULT 0,
    disabled_reason       TEXT,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL
);

-- Each event as it was sent (the exact body), kept for retries and redeliveries until the
-- retention of the delivery log removes it. `chat_id` lets an erasure find a contact's events.
CREATE TABLE webhook_events (
    id          TEXT PRIMARY KEY,
    type        TEXT NOT NULL,
    chat_id     TEXT,
    created_at  BIGINT NOT NULL,
    body        TEXT NOT NULL
);
CREATE INDEX webhook_events_created ON webhook_events (created_at);
CREATE INDEX webhook_events_chat ON webhook_events (chat_id);

-- One row per delivery attempt.
CREATE TABLE webhook_deliveries (
    id           BIGSERIAL PRIMARY KEY,
    endpoint_id  BIGINT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id     TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    attempt      BIGINT NOT NULL,
    at           BIGINT NOT NULL,
    outcome      TEXT NOT NULL,
    status       BIGINT,
    error        TEXT,
    duration_ms  BIGINT NOT NULL,
    node         TEXT NOT NULL
);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id DESC);
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id, endpoint_id);
CREATE INDEX webhook_deliveries_at ON webhook_deliveries (at);

-- Admin and supervisor actions. `actor_id` is NULL for the system (retention, an endpoint
-- disabled after failures). `detail` is a JSON object of kinds and counts, never erased data.
CREATE TABLE audit_log (
    id        BIGSERIAL PRIMARY KEY,
    at        BIGINT NOT NULL,
    actor_id  BIGINT,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    target    TEXT NOT NULL DEFAULT '',
    detail    TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_action ON audit_log (action, id DESC);
