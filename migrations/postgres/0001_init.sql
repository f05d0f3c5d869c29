-- Switchboard store, PostgreSQL flavour. Timestamps are Unix milliseconds (BIGINT).
-- Agent ids on messages and interactions carry no foreign key on purpose: a transcript
-- must be written even if the agent it names is gone. Transcript entries are TEXT holding
-- JSON, not JSONB: the sqlx Any driver cannot bind or read JSONB.

CREATE TABLE queues (
    name        TEXT PRIMARY KEY,
    created_at  BIGINT NOT NULL
);

CREATE TABLE agents (
    id            BIGSERIAL PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    display_name  TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('agent', 'admin')),
    max_chats     BIGINT NOT NULL CHECK (max_chats BETWEEN 1 AND 100),
    created_at    BIGINT NOT NULL
);

CREATE TABLE agent_queues (
    agent_id  BIGINT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    queue     TEXT NOT NULL REFERENCES queues (name),
    PRIMARY KEY (agent_id, queue)
);

CREATE TABLE contacts (
    id          BIGSERIAL PRIMARY KEY,
    visitor_id  TEXT,
    email       TEXT UNIQUE,
    name        TEXT,
    created_at  BIGINT NOT NULL
);
CREATE INDEX contacts_visitor ON contacts (visitor_id);
-- One anonymous (no e-mail) contact per visitor id, so concurrent flushes upsert it.
CREATE UNIQUE INDEX contacts_anonymous_visitor ON contacts (visitor_id) WHERE email IS NULL;

CREATE TABLE interactions (
    id          BIGSERIAL PRIMARY KEY,
    contact_id  BIGINT NOT NULL REFERENCES contacts (id),
    subject     TEXT NOT NULL,
    created_by  BIGINT,
    created_at  BIGINT NOT NULL,
    auto_kept   BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX interactions_contact ON interactions (contact_id, created_at DESC, id DESC);
CREATE INDEX interactions_recent ON interactions (created_at DESC, id DESC);

CREATE TABLE messages (
    id              BIGSERIAL PRIMARY KEY,
    chat_id         TEXT NOT NULL UNIQUE,
    interaction_id  BIGINT REFERENCES interactions (id),
    contact_id      BIGINT NOT NULL REFERENCES contacts (id),
    agent_id        BIGINT,
    queue           TEXT NOT NULL,
    started_at      BIGINT NOT NULL,
    accepted_at     BIGINT,
    ended_at        BIGINT NOT NULL,
    end_reason      TEXT NOT NULL,
    decision        TEXT NOT NULL CHECK (decision IN ('create', 'add', 'trash', 'keep')),
    decided_by      BIGINT,
    decided_at      BIGINT NOT NULL,
    trashed         BOOLEAN NOT NULL DEFAULT FALSE,
    -- The whole transcript as a JSON array of entries.
    entries         TEXT NOT NULL
);
CREATE INDEX messages_interaction ON messages (interaction_id);
CREATE INDEX messages_contact ON messages (contact_id);
