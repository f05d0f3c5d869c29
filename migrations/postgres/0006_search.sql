-- History search, PostgreSQL flavour. A Message keeps the visitor's name as the chat carried
-- it (the contact keeps only the first name it learnt). `search` is the Message's text-search
-- document: the visitor's name, the e-mail and the text of every message entry (their first
-- 100,000 characters), with the `simple` configuration (no stemming, no stop words). A trigger
-- computes it in the statement that stores the Message (in the flush's transaction, whichever
-- node version writes it); it goes with the row.

ALTER TABLE messages ADD COLUMN visitor_name TEXT;
ALTER TABLE messages ADD COLUMN search tsvector NOT NULL DEFAULT ''::tsvector;

CREATE FUNCTION message_search_document(name TEXT, email TEXT, entries TEXT) RETURNS tsvector
LANGUAGE sql IMMUTABLE AS $$
    SELECT to_tsvector('simple', left(
        coalesce(name, '') || ' ' || coalesce(email, '') || ' ' || coalesce(
            (SELECT string_agg(e->>'text', ' ')
               FROM jsonb_array_elements(entries::jsonb) e
              WHERE e->>'kind' = 'message'), ''), 100000))
$$;

CREATE FUNCTION message_search_index() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.search := message_search_document(NEW.visitor_name, NEW.visitor_email, NEW.entries);
    RETURN NEW;
END
$$;

UPDATE messages m SET visitor_name = c.name FROM contacts c WHERE c.id = m.contact_id;
UPDATE messages SET search = message_search_document(visitor_name, visitor_email, entries);

CREATE TRIGGER message_search_index BEFORE INSERT ON messages
    FOR EACH ROW EXECUTE FUNCTION message_search_index();

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
