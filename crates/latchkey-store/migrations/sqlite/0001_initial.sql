-- Version 1: users, identities, sessions, devices and email/password credentials.
CREATE TABLE users (
    app_id      TEXT NOT NULL,
    id          TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    disabled    INTEGER NOT NULL DEFAULT 0,
    custom_data TEXT,
    PRIMARY KEY (app_id, id)
);
CREATE TABLE identities (
    app_id        TEXT NOT NULL,
    provider_type TEXT NOT NULL,
    id            TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    data          TEXT NOT NULL DEFAULT '{}',
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (app_id, provider_type, id),
    FOREIGN KEY (app_id, user_id) REFERENCES users (app_id, id) ON DELETE CASCADE
);
CREATE INDEX identities_by_user ON identities (app_id, user_id);
CREATE TABLE sessions (
    app_id     TEXT NOT NULL,
    id         TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    device_id  TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (app_id, id),
    FOREIGN KEY (app_id, user_id) REFERENCES users (app_id, id) ON DELETE CASCADE
);
CREATE INDEX sessions_by_user ON sessions (app_id, user_id);
CREATE TABLE devices (
    app_id       TEXT NOT NULL,
    id           TEXT NOT NULL,
    user_id      TEXT,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    PRIMARY KEY (app_id, id)
);
CREATE TABLE userpass_credentials (
    app_id        TEXT NOT NULL,
    id            TEXT NOT NULL,
    email         TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('pending', 'confirmed')),
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (app_id, id),
    UNIQUE (app_id, email)
);
