-- Version 5: a run's name and notes. The name starts as the one the request gave (the run's
-- configuration keeps that one); both can be edited after the run.
ALTER TABLE runs ADD COLUMN name TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN notes TEXT NOT NULL DEFAULT '';
