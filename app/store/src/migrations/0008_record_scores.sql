-- Version 8: the score index. One line per stored record row and score with the score's value
-- (and the record's dataset index, so runs are compared record by record from the index)
-- (finite values only), and one line per row under the empty score name ('', no metric has
-- it) whose value is 1 for a failed row and 0 otherwise. Written with the rows, in the same
-- transaction. Sorting a run's records by a score walks `record_scores_by_value` from a key
-- (keyset paging: no OFFSET, no JSON read per row); the side-by-side view reads a score's
-- cells of a run as one range of the primary key without reading a record.
CREATE TABLE record_scores (
    run_id      TEXT NOT NULL,
    score       TEXT NOT NULL,
    model_order INTEGER NOT NULL,
    position    INTEGER NOT NULL,
    idx         INTEGER NOT NULL,
    value       REAL NOT NULL,
    PRIMARY KEY (run_id, score, position, model_order)
) WITHOUT ROWID;
-- Ties are in export order whichever the direction: one index per direction, each read in
-- its own order from the cursor on.
CREATE INDEX record_scores_by_value ON record_scores (run_id, score, value, position, model_order);
CREATE INDEX record_scores_by_value_desc ON record_scores (run_id, score, value DESC, position, model_order);
-- The records page's model, variant and failure filters, counted from an index.
CREATE INDEX records_by_column ON records (run_id, model, variant, error IS NOT NULL);

INSERT INTO record_scores (run_id, score, model_order, position, idx, value)
SELECT run_id, '', model_order, position, idx, error IS NOT NULL FROM records;
INSERT OR IGNORE INTO record_scores (run_id, score, model_order, position, idx, value)
SELECT records.run_id, json_extract(j.value, '$.name'), records.model_order, records.position,
    records.idx, json_extract(j.value, '$.value')
FROM records, json_each(records.scores) AS j
WHERE json_type(j.value, '$.value') IN ('integer', 'real')
    AND json_extract(j.value, '$.name') <> '';
