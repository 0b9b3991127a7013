-- Version 3: run leases. A process executing a run holds its lease (holder id, expiry in Unix
-- seconds) and renews it; another process may take a lease that expired and resume the run.
ALTER TABLE runs ADD COLUMN lease_holder TEXT;
ALTER TABLE runs ADD COLUMN lease_until INTEGER;
