-- Canned responses: shared ones (managed by admins, owner_id NULL) and personal ones (owned
-- by one agent, gone with the agent). A shortcut is unique within its scope and owner, so a
-- personal shortcut may shadow a shared one. `search` is title, shortcut and text lowercased
-- by the server and `title_key` the lowercased title, so word search and ordering behave the
-- same on both backends (LIKE and LOWER differ between them outside ASCII).

CREATE TABLE canned_responses (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    scope       TEXT NOT NULL CHECK (scope IN ('shared', 'personal')),
    owner_id    INTEGER REFERENCES agents (id) ON DELETE CASCADE,
    title       TEXT NOT NULL,
    shortcut    TEXT NOT NULL,
    text        TEXT NOT NULL,
    title_key   TEXT NOT NULL,
    search      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    CHECK ((scope = 'shared') = (owner_id IS NULL))
);
CREATE UNIQUE INDEX canned_shared_shortcut ON canned_responses (shortcut)
    WHERE scope = 'shared';
CREATE UNIQUE INDEX canned_personal_shortcut ON canned_responses (owner_id, shortcut)
    WHERE scope = 'personal';
