-- Version 3: confirmation / reset token pairs (hashed) and the outbox.
CREATE TABLE userpass_tokens (
    app_id        TEXT NOT NULL,
    token_id_hash TEXT NOT NULL,
    token_hash    TEXT NOT NULL,
    purpose       TEXT NOT NULL CHECK (purpose IN ('confirm', 'reset')),
    email         TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    PRIMARY KEY (app_id, token_id_hash)
);
CREATE INDEX userpass_tokens_by_email ON userpass_tokens (app_id, email, purpose);
CREATE TABLE outbox (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    app_id     TEXT NOT NULL,
    recipient  TEXT NOT NULL,
    kind       TEXT NOT NULL,
    subject    TEXT NOT NULL,
    body       TEXT NOT NULL,
    token      TEXT NOT NULL,
    token_id   TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX outbox_by_app ON outbox (app_id, seq);
