-- Version 6: prompt variants. A run evaluates each record with every (variant, model) pair, so
-- a model's label repeats within a run: a row is keyed by its column (`model_order`, the pair's
-- position: variant × models + model) instead, and `variant` holds the variant's label. SQLite
-- cannot change a primary key in place: the table is rebuilt.
CREATE TABLE records_v6 (
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
    cached        INTEGER NOT NULL DEFAULT 0,
    variant       TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (run_id, position, model_order)
);
INSERT INTO records_v6 (run_id, model, model_order, position, idx, model_input, prompt,
    model_output, target_output, category, scores, latency_ms, input_tokens, output_tokens,
    cost_usd, error, judge_replies, cached)
SELECT run_id, model, model_order, position, idx, model_input, prompt, model_output,
    target_output, category, scores, latency_ms, input_tokens, output_tokens, cost_usd, error,
    judge_replies, cached
FROM records;
DROP TABLE records;
ALTER TABLE records_v6 RENAME TO records;
