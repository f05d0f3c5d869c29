-- The `supervisor` role: watches every queue and chat live, whispers to agents, takes chats
-- over. SQLite cannot change a CHECK constraint in place, so the agents table is rebuilt.
-- Dropping it runs its foreign-key actions (agent_queues and personal canned responses cascade),
-- so those rows are kept aside first and put back after; ids and the id sequence are kept.

CREATE TEMP TABLE keep_agent_queues AS SELECT * FROM agent_queues;
CREATE TEMP TABLE keep_canned AS SELECT * FROM canned_responses WHERE owner_id IS NOT NULL;
CREATE TEMP TABLE keep_agent_seq AS SELECT seq FROM sqlite_sequence WHERE name = 'agents';

CREATE TABLE agents_new (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    username        TEXT NOT NULL UNIQUE,
    display_name    TEXT NOT NULL,
    password_hash   TEXT NOT NULL,
    role            TEXT NOT NULL CHECK (role IN ('agent', 'supervisor', 'admin')),
    max_chats       INTEGER NOT NULL CHECK (max_chats BETWEEN 1 AND 100),
    created_at      INTEGER NOT NULL,
    session_version INTEGER NOT NULL DEFAULT 1,
    disabled        INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1))
);
INSERT INTO agents_new (id, username, display_name, password_hash, role, max_chats, created_at,
                        session_version, disabled)
    SELECT id, username, display_name, password_hash, role, max_chats, created_at,
           session_version, disabled
    FROM agents;
DROP TABLE agents;
ALTER TABLE agents_new RENAME TO agents;

INSERT OR IGNORE INTO agent_queues SELECT * FROM keep_agent_queues;
INSERT OR IGNORE INTO canned_responses SELECT * FROM keep_canned;
UPDATE sqlite_sequence SET seq = MAX(seq, COALESCE((SELECT seq FROM keep_agent_seq), 0))
    WHERE name = 'agents';
DROP TABLE keep_agent_queues;
DROP TABLE keep_canned;
DROP TABLE keep_agent_seq;
