-- Canned responses: shared ones (managed by admins, owner_id NULL) and personal ones (owned
-- by one agent, gone with the agent). A shortcut is unique within its scope and owner, so a
-- personal shortcut may shadow a shared one. `search` is title, shortcut and text lowercased
-- by the server and `title_key` the lowercased title, so word search and ordering behave the
-- same on both backends; the "C" collation makes them byte order, as SQLite's BINARY is.

CREATE TABLE canned_responses (
    id          BIGSERIAL PRIMARY KEY,
    scope       TEXT NOT NULL CHECK (scope IN ('shared', 'personal')),
    owner_id    BIGINT REFERENCES agents (id) ON DELETE CASCADE,
    title       TEXT NOT NULL,
    shortcut    TEXT COLLATE "C" NOT NULL,
    text        TEXT NOT NULL,
    title_key   TEXT COLLATE "C" NOT NULL,
    search      TEXT COLLATE "C" NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    CHECK ((scope = 'shared') = (owner_id IS NULL))
);
CREATE UNIQUE INDEX canned_shared_shortcut ON canned_responses (shortcut)
    WHERE scope = 'shared';
CREATE UNIQUE INDEX canned_personal_shortcut ON canned_responses (owner_id, shortcut)
    WHERE scope = 'personal';
