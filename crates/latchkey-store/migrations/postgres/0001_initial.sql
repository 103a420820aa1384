-- Version 1: users, identities, sessions, devices and email/password credentials.
-- The same schema as migrations/sqlite, in PostgreSQL's types: BIGINT Unix seconds,
-- BOOLEAN flags, JSONB objects, enums for the stored names. `rowid` keeps insertion order
-- (SQLite's implicit rowid), the tie-break of the "oldest first" lists.
CREATE TYPE credential_status AS ENUM ('pending', 'confirmed');
CREATE TABLE users (
    app_id      TEXT NOT NULL,
    id          TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    disabled    BOOLEAN NOT NULL DEFAULT FALSE,
    custom_data JSONB,
    rowid       BIGINT GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (app_id, id)
);
CREATE TABLE identities (
    app_id        TEXT NOT NULL,
    provider_type TEXT NOT NULL,
    id            TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    data          JSONB NOT NULL DEFAULT '{}',
    created_at    BIGINT NOT NULL,
    rowid         BIGINT GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (app_id, provider_type, id),
    FOREIGN KEY (app_id, user_id) REFERENCES users (app_id, id) ON DELETE CASCADE
);
CREATE INDEX identities_by_user ON identities (app_id, user_id);
CREATE TABLE sessions (
    app_id     TEXT NOT NULL,
    id         TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    device_id  TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (app_id, id),
    FOREIGN KEY (app_id, user_id) REFERENCES users (app_id, id) ON DELETE CASCADE
);
CREATE INDEX sessions_by_user ON sessions (app_id, user_id);
CREATE TABLE devices (
    app_id       TEXT NOT NULL,
    id           TEXT NOT NULL,
    user_id      TEXT,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    PRIMARY KEY (app_id, id)
);
CREATE TABLE userpass_credentials (
    app_id        TEXT NOT NULL,
    id            TEXT NOT NULL,
    email         TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    status        credential_status NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (app_id, id),
    UNIQUE (app_id, email)
);
