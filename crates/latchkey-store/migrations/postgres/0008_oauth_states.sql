-- Version 8: the server-side state of the browser OAuth redirect flow (protocol.md §3.7):
-- one row per started sign-in, found by the hash of the state sent to the provider,
-- taken (deleted) once by the callback, purged when expired.
CREATE TABLE oauth_states (
    state_hash     TEXT PRIMARY KEY,
    app_id         TEXT NOT NULL,
    provider_type  TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    client_state   TEXT NOT NULL,
    device         TEXT,
    link_user_id   TEXT,
    link_session_id TEXT,
    code_verifier  TEXT,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL
);
CREATE INDEX oauth_states_by_expiry ON oauth_states (expires_at);
