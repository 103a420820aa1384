-- Version 7: at most one confirmation / reset pair per email and purpose, so that replacing
-- the pair is one atomic upsert (two requests at once cannot both leave a valid pair).
DROP INDEX userpass_tokens_by_email;
CREATE UNIQUE INDEX userpass_tokens_by_email ON userpass_tokens (app_id, email, purpose);
