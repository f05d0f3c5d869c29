-- Agent sessions and accounts: an agent's tokens carry `session_version` and are valid only
-- while it matches (logout, a password reset, disabling or deleting the agent raise it); a
-- disabled agent cannot log in.
-- Messages record the e-mail the chat carried and whether the site vouched for it (only a
-- verified e-mail links a chat to a contact), and the agents who handled the chat (they, and
-- admins, may download its files after the flush).

ALTER TABLE agents ADD COLUMN session_version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE agents ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1));

ALTER TABLE messages ADD COLUMN visitor_email TEXT;
ALTER TABLE messages ADD COLUMN email_verified INTEGER NOT NULL DEFAULT 0 CHECK (email_verified IN (0, 1));
-- Comma-separated agent ids, in the order they joined the chat.
ALTER TABLE messages ADD COLUMN agents TEXT NOT NULL DEFAULT '';
