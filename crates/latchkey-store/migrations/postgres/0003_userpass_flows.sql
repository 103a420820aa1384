-- Version 3: confirmation / reset token pairs (hashed) and the outbox.
CREATE TYPE token_purpose AS ENUM ('confirm', 'reset');
CREATE TABLE userpass_tokens (
    app_id        TEXT NOT NULL,
    token_id_hash TEXT NOT NULL,
    token_hash    TEXT NOT NULL,
    purpose       token_purpose NOT NULL,
    email         TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    PRIMARY KEY (app_id, token_id_hash)
);
CREATE INDEX userpass_tokens_by_email ON userpass_tokens (app_id, email, purpose);
CREATE TABLE outbox (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    app_id     TEXT NOT NULL,
    recipient  TEXT NOT NULL,
    kind       TEXT NOT NULL,
    subject    TEXT NOT NULL,
    body       TEXT NOT NULL,
    token      TEXT NOT NULL,
    token_id   TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX outbox_by_app ON outbox (app_id, seq);
