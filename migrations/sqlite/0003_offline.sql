-- "Nobody is there": offline messages and per-queue settings.
-- An offline message is an interaction of kind 'offline_message' on the visitor's anonymous
-- contact (one per visitor id, as for chats without a verified e-mail). The e-mail the visitor
-- typed is a claim, not an identity: it is kept on the message only and never matches or
-- creates a contact.

ALTER TABLE interactions ADD COLUMN kind TEXT NOT NULL DEFAULT 'chat'
    CHECK (kind IN ('chat', 'offline_message'));

-- Shown to visitors while the queue is closed ('' = the widget's default text).
ALTER TABLE queues ADD COLUMN offline_text TEXT NOT NULL DEFAULT '';
-- Business hours as JSON ({"timezone": "Europe/Berlin", "days": {"mon": [["09:00", "17:00"]]}});
-- '' = always open (while staffed).
ALTER TABLE queues ADD COLUMN business_hours TEXT NOT NULL DEFAULT '';

CREATE TABLE offline_messages (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    -- Chosen by the node before anything is written: the notification job names it, and a
    -- retried insert with the same uid stores nothing twice.
    uid             TEXT NOT NULL UNIQUE,
    interaction_id  INTEGER NOT NULL REFERENCES interactions (id),
    queue           TEXT NOT NULL,
    visitor_id      TEXT NOT NULL,
    name            TEXT NOT NULL,
    email           TEXT NOT NULL,
    message         TEXT NOT NULL,
    page_url        TEXT NOT NULL,
    ip              TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'claimed', 'done')),
    claimed_by      INTEGER,
    claimed_at      INTEGER,
    done_at         INTEGER,
    notified_at     INTEGER,
    created_at      INTEGER NOT NULL
);
CREATE INDEX offline_messages_inbox ON offline_messages (queue, status, created_at);
