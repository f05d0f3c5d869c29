-- History search, SQLite flavour. A Message keeps the visitor's name as the chat carried it
-- (the contact keeps only the first name it learnt). `message_search` is an FTS5 index with
-- one row per Message (rowid = messages.id): `name` holds the visitor's name, `body` the
-- e-mail and the text of every message entry (its first 100,000 characters). Triggers keep it
-- with the table: a Message is indexed by the statement that stores it (in the flush's
-- transaction, whichever node version writes it) and leaves the index with its row (erasure,
-- retention), so a transcript is searchable exactly while it is stored.

ALTER TABLE messages ADD COLUMN visitor_name TEXT;
UPDATE messages SET visitor_name = (SELECT c.name FROM contacts c WHERE c.id = messages.contact_id);

-- Newest first, for the unfiltered history and for each exact filter (keyset pagination
-- on (started_at, id)).
CREATE INDEX messages_recent ON messages (started_at DESC, id DESC);
CREATE INDEX messages_email ON messages (lower(visitor_email), started_at DESC, id DESC);
CREATE INDEX messages_agent ON messages (agent_id, started_at DESC, id DESC);
CREATE INDEX messages_queue ON messages (queue, started_at DESC, id DESC);

CREATE VIRTUAL TABLE message_search USING fts5 (name, body, tokenize = 'unicode61');

INSERT INTO message_search (rowid, name, body)
SELECT m.id,
       coalesce(m.visitor_name, ''),
       substr(coalesce(m.visitor_email, '') || ' ' || coalesce(
           (SELECT group_concat(json_extract(e.value, '$.text'), ' ')
              FROM json_each(m.entries) e
             WHERE json_extract(e.value, '$.kind') = 'message'), ''), 1, 100000)
  FROM messages m;

CREATE TRIGGER message_search_add AFTER INSERT ON messages
BEGIN
    INSERT INTO message_search (rowid, name, body)
    VALUES (new.id,
            coalesce(new.visitor_name, ''),
            substr(coalesce(new.visitor_email, '') || ' ' || coalesce(
                (SELECT group_concat(json_extract(e.value, '$.text'), ' ')
                   FROM json_each(new.entries) e
                  WHERE json_extract(e.value, '$.kind') = 'message'), ''), 1, 100000));
END;

CREATE TRIGGER message_search_forget AFTER DELETE ON messages
BEGIN
    DELETE FROM message_search WHERE rowid = old.id;
END;
