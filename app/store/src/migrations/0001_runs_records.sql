-- Version 1: the runs and records tables the CLI writes (IF NOT EXISTS: a store created before
-- migrations were numbered already has them).
CREATE TABLE IF NOT EXISTS runs (
    id      TEXT PRIMARY KEY,
    created TEXT NOT NULL,
    config  TEXT NOT NULL,
    status  TEXT NOT NULL,
    summary TEXT
);

CREATE TABLE IF NOT EXISTS records (
    run_id        TEXT NOT NULL REFERENCES runs(id),
    model         TEXT NOT NULL,
    model_order   INTEGER NOT NULL,
    position      INTEGER NOT NULL,
    idx           INTEGER NOT NULL,
    model_input   TEXT NOT NULL,
    prompt        TEXT NOT NULL,
    model_output  TEXT,
    target_output TEXT,
    category      TEXT,
    scores        TEXT NOT NULL,
    latency_ms    REAL,
    input_tokens  INTEGER,
    output_tokens INTEGER,
    cost_usd      REAL,
    error         TEXT,
    judge_replies TEXT NOT NULL,
    PRIMARY KEY (run_id, model, position)
);
