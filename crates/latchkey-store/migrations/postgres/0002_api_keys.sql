-- Version 2: API keys (user and server keys of the `api-key` provider).
CREATE TYPE api_key_kind AS ENUM ('user', 'server');
CREATE TABLE api_keys (
    app_id     TEXT NOT NULL,
    id         TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    kind       api_key_kind NOT NULL,
    name       TEXT NOT NULL,
    hash       TEXT NOT NULL,
    disabled   BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL,
    rowid      BIGINT GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (app_id, id),
    UNIQUE (app_id, user_id, name),
    FOREIGN KEY (app_id, user_id) REFERENCES users (app_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX api_keys_server_names ON api_keys (app_id, name) WHERE kind = 'server';
CREATE INDEX api_keys_by_kind ON api_keys (app_id, kind);
