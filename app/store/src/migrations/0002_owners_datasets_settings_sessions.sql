-- Version 2: every run belongs to a user (runs written before this belong to the local user),
-- records are read in export order through an index, and the web app's datasets, saved
-- settings and sessions.
ALTER TABLE runs ADD COLUMN owner TEXT NOT NULL DEFAULT 'local';
ALTER TABLE runs ADD COLUMN total INTEGER;
ALTER TABLE records ADD COLUMN cached INTEGER NOT NULL DEFAULT 0;
CREATE INDEX runs_by_owner ON runs (owner, created);
CREATE INDEX records_in_export_order ON records (run_id, position, model_order);

CREATE TABLE datasets (
    id         TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    name       TEXT NOT NULL,
    format     TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    n_records  INTEGER NOT NULL,
    fields     TEXT NOT NULL,
    created    TEXT NOT NULL
);
CREATE INDEX datasets_by_owner ON datasets (owner, created);

CREATE TABLE settings (
    owner   TEXT PRIMARY KEY,
    value   TEXT NOT NULL,
    updated TEXT NOT NULL
);

-- `id_hash` is the SHA-256 of the session id: the cookie's value is never stored, so a copy of
-- the database opens no session.
CREATE TABLE sessions (
    id_hash    TEXT PRIMARY KEY,
    csrf_token TEXT NOT NULL,
    user_id    TEXT,
    user_name  TEXT,
    auth_data  TEXT,
    expires    INTEGER NOT NULL
);
CREATE INDEX sessions_by_expiry ON sessions (expires);
