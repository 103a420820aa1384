-- Version 4: the identity each session logged in with (to revoke the sessions of
-- a disabled or deleted API key).
ALTER TABLE sessions ADD COLUMN provider_type TEXT;
ALTER TABLE sessions ADD COLUMN identity_id TEXT;
CREATE INDEX sessions_by_identity ON sessions (app_id, provider_type, identity_id);
