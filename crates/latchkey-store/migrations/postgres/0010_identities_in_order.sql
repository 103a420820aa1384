-- Version 10: a user's identities in creation order straight from the index: the profile join
-- (every GET /auth/profile) and list_identities read them without a sort.
DROP INDEX identities_by_user;
CREATE INDEX identities_by_user ON identities (app_id, user_id, created_at);
