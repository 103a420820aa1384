-- Version 6: throttling counters (failed logins, messages) kept in the database, so that
-- several server nodes share one count. One row per bucket (a hashed key chosen by the
-- server); `Store::throttle_hit` updates it in one INSERT ... ON CONFLICT DO UPDATE.
CREATE TABLE throttle (
    bucket       TEXT PRIMARY KEY,
    hits         INTEGER NOT NULL,
    window_start INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    locked_until INTEGER NOT NULL DEFAULT 0,
    lockouts     INTEGER NOT NULL DEFAULT 0,
    allowed      INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX throttle_by_expiry ON throttle (expires_at);
