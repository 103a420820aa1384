-- Version 6: throttling counters (failed logins, messages) kept in the database, so that
-- several server nodes share one count. One row per bucket (a hashed key chosen by the
-- server); `Store::throttle_hit` updates it in one INSERT ... ON CONFLICT DO UPDATE,
-- which takes the row's lock: concurrent hits from any node are counted one by one.
CREATE TABLE throttle (
    bucket       TEXT PRIMARY KEY,
    hits         BIGINT NOT NULL,
    window_start BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    locked_until BIGINT NOT NULL DEFAULT 0,
    lockouts     BIGINT NOT NULL DEFAULT 0,
    allowed      BOOLEAN NOT NULL DEFAULT TRUE
);
CREATE INDEX throttle_by_expiry ON throttle (expires_at);
