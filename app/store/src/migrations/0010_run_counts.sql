-- Version 10 on this branch, numbered 14 to be applied after 0010-0013 (written at the same
-- time elsewhere) when they meet: a run's stored rows counted beside the run, ok and failed,
-- added to in the same transaction as the rows (`insert_records`), so a run's progress, its
-- records page's total and the check that a kept score matrix is current read one run row
-- instead of counting the run's rows (a 60,000-row run: 2 to 18 ms a count, several counts a
-- page). Runs stored before this are counted once here.
ALTER TABLE runs ADD COLUMN n_ok INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN n_failed INTEGER NOT NULL DEFAULT 0;
UPDATE runs SET
    n_ok = (SELECT COUNT(*) FROM records WHERE records.run_id = runs.id AND records.error IS NULL),
    n_failed = (SELECT COUNT(*) FROM records WHERE records.run_id = runs.id AND records.error IS NOT NULL);
