-- Switchboard store, SQLite flavour. Timestamps are Unix milliseconds.
-- Flags are INTEGER 0/1 (SQLite has no boolean type). Agent ids on messages and
-- interactions carry no foreign key on purpose: a transcript must be written even if
-- the agent it names is gone.

CREATE TABLE queues (
    name        TEXT PRIMARY KEY,
    created_at  INTEGER NOT NULL
);

CREATE TABLE agents (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT NOT NULL UNIQUE,
    display_name  TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('agent', 'admin')),
    max_chats     INTEGER NOT NULL CHECK (max_chats BETWEEN 1 AND 100),
    created_at    INTEGER NOT NULL
);

CREATE TABLE agent_queues (
    agent_id  INTEGER NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    queue     TEXT NOT NULL REFERENCES queues (name),
    PRIMARY KEY (agent_id, queue)
);

CREATE TABLE contacts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    visitor_id  TEXT,
    email       TEXT UNIQUE,
    name        TEXT,
    created_at  INTEGER NOT NULL
);
CREATE INDEX contacts_visitor ON contacts (visitor_id);
-- One anonymous (no e-mail) contact per visitor id, so concurrent flushes upsert it.
CREATE UNIQUE INDEX contacts_anonymous_visitor ON contacts (visitor_id) WHERE email IS NULL;

CREATE TABLE interactions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    contact_id  INTEGER NOT NULL REFERENCES contacts (id),
    subject     TEXT NOT NULL,
    created_by  INTEGER,
    created_at  INTEGER NOT NULL,
    auto_kept   INTEGER NOT NULL DEFAULT 0 CHECK (auto_kept IN (0, 1))
);
CREATE INDEX interactions_contact ON interactions (contact_id, created_at DESC, id DESC);
CREATE INDEX interactions_recent ON interactions (created_at DESC, id DESC);

CREATE TABLE messages (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    chat_id         TEXT NOT NULL UNIQUE,
    interaction_id  INTEGER REFERENCES interactions (id),
    contact_id      INTEGER NOT NULL REFERENCES contacts (id),
    agent_id        INTEGER,
    queue           TEXT NOT NULL,
    started_at      INTEGER NOT NULL,
    accepted_at     INTEGER,
    ended_at        INTEGER NOT NULL,
    end_reason      TEXT NOT NULL,
    decision        TEXT NOT NULL CHECK (decision IN ('create', 'add', 'trash', 'keep')),
    decided_by      INTEGER,
    decided_at      INTEGER NOT NULL,
    trashed         INTEGER NOT NULL DEFAULT 0 CHECK (trashed IN (0, 1)),
    -- The whole transcript as a JSON array of entries.
    entries         TEXT NOT NULL
);
CREATE INDEX messages_interaction ON messages (interaction_id);
CREATE INDEX messages_contact ON messages (contact_id);
