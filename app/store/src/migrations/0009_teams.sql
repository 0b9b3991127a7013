-- Version 9 (issue 22, workshops as teams): the directory of users who signed in, read-only
-- grants on runs and datasets (kept with their item: deleting the item deletes them), per-user
-- quota overrides set by a facilitator, the audit of what a facilitator did to another user's
-- item, and challenges with their submitted runs.
CREATE TABLE users (
    id   TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    seen TEXT NOT NULL
);

-- `grantee` is a user id, or `*` for everyone.
CREATE TABLE grants (
    kind    TEXT NOT NULL,
    item_id TEXT NOT NULL,
    owner   TEXT NOT NULL,
    grantee TEXT NOT NULL,
    created TEXT NOT NULL,
    PRIMARY KEY (kind, item_id, grantee)
);
CREATE INDEX grants_by_grantee ON grants (grantee, created);

CREATE TABLE user_quotas (
    user_id TEXT PRIMARY KEY,
    value   TEXT NOT NULL,
    updated TEXT NOT NULL
);

CREATE TABLE audit (
    owner      TEXT NOT NULL,
    kind       TEXT NOT NULL,
    item_id    TEXT NOT NULL,
    at         TEXT NOT NULL,
    actor      TEXT NOT NULL,
    actor_name TEXT NOT NULL,
    action     TEXT NOT NULL
);
CREATE INDEX audit_by_item ON audit (kind, item_id, at);

CREATE TABLE challenges (
    id      TEXT PRIMARY KEY,
    owner   TEXT NOT NULL,
    created TEXT NOT NULL,
    open    INTEGER NOT NULL,
    spec    TEXT NOT NULL
);
CREATE INDEX challenges_by_created ON challenges (created);

CREATE TABLE challenge_runs (
    challenge_id TEXT NOT NULL,
    run_id       TEXT NOT NULL,
    participant  TEXT NOT NULL,
    submitted    TEXT NOT NULL,
    PRIMARY KEY (challenge_id, run_id)
);
