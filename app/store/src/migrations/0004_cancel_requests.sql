-- Version 4: cancel requests. A page served by a process that does not execute a run records
-- that the user asked to cancel it; the process holding the run's lease sees the flag at its
-- next renewal and cancels the run.
ALTER TABLE runs ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0;
