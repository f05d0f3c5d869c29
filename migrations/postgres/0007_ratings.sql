-- Post-chat ratings, PostgreSQL flavour. Timestamps are Unix milliseconds.
-- A rating is written when the visitor gives it, whether or not the chat's transcript has been
-- flushed yet: it is keyed by the chat id (at most one per chat), and the interaction detail
-- finds it through `messages.chat_id`. `queue` and `agent_id` are copied from the chat as it
-- ended, so metrics and reports need no join.
CREATE TABLE chat_ratings (
    chat_id   TEXT PRIMARY KEY,
    queue     TEXT NOT NULL,
    agent_id  BIGINT,
    rating    TEXT NOT NULL CHECK (rating IN ('good', 'bad')),
    comment   TEXT,
    rated_at  BIGINT NOT NULL
);
CREATE INDEX chat_ratings_queue ON chat_ratings (queue, rated_at);
