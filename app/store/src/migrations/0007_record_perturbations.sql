-- Version 7: the perturbed prompts of a semantic-robustness metric, their answers and scores,
-- kept per record (a JSON list, empty for every other metric).
ALTER TABLE records ADD COLUMN perturbations TEXT NOT NULL DEFAULT '[]';
