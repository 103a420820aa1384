-- Version 8: the audit log of administrative actions (console, admin API, CLI).
CREATE TABLE audit_log (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    app_id  TEXT NOT NULL,
    at      INTEGER NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    target  TEXT NOT NULL,
    outcome TEXT NOT NULL
);
CREATE INDEX audit_log_by_app ON audit_log (app_id, seq);
