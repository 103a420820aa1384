-- Version 7: at most one confirmation / reset pair per email and purpose, so that replacing
-- the pair is one atomic upsert (two requests at once cannot both leave a valid pair).
-- Earlier releases already kept one pair; should a database hold more, the newest stays.
DELETE FROM userpass_tokens WHERE rowid NOT IN (
    SELECT MAX(rowid) FROM userpass_tokens GROUP BY app_id, email, purpose
);
DROP INDEX userpass_tokens_by_email;
CREATE UNIQUE INDEX userpass_tokens_by_email ON userpass_tokens (app_id, email, purpose);
