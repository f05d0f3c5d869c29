-- History search, PostgreSQL flavour. A Message keeps the visitor's name as the chat carried
-- it (the contact keeps only the first name it learnt). `search` is the Message's text-search
-- document (the visitor's name, the e-mail and the text of every message entry, with the
-- `simple` configuration: no stemming, no stop words), written by the flush in the
-- transaction that stores the Message and removed with the row.

ALTER TABLE messages ADD COLUMN visitor_name TEXT;
ALTER TABLE messages ADD COLUMN search tsvector NOT NULL DEFAULT ''::tsvector;

UPDATE messages m SET visitor_name = c.name FROM contacts c WHERE c.id = m.contact_id;
UPDATE messages m SET search = to_tsvector('simple',
    coalesce(m.visitor_name, '') || ' ' || coalesce(m.visitor_email, '') || ' ' || coalesce(
        (SELECT string_agg(e->>'text', ' ')
           FROM jsonb_array_elements(m.entries::jsonb) e
          WHERE e->>'kind' = 'message'), ''));

CREATE INDEX messages_search ON messages USING GIN (search);
-- The visitor-name filter matches this very expression.
CREATE INDEX messages_name_search ON messages
    USING GIN (to_tsvector('simple', coalesce(visitor_name, '')));

-- Newest first, for the unfiltered history and for each exact filter (keyset pagination
-- on (started_at, id)).
CREATE INDEX messages_recent ON messages (started_at DESC, id DESC);
CREATE INDEX messages_email ON messages (lower(visitor_email), started_at DESC, id DESC);
CREATE INDEX messages_agent ON messages (agent_id, started_at DESC, id DESC);
CREATE INDEX messages_queue ON messages (queue, started_at DESC, id DESC);
