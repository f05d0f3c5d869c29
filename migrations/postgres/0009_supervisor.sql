-- The `supervisor` role: watches every queue and chat live, whispers to agents, takes chats
-- over.

ALTER TABLE agents DROP CONSTRAINT agents_role_check;
ALTER TABLE agents ADD CONSTRAINT agents_role_check
    CHECK (role IN ('agent', 'supervisor', 'admin'));
