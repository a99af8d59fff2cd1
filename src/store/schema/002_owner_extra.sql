-- Schema version 2: which process owns a running run (so a run whose writer died reads as
-- interrupted), a JSON `extra` on runs, problems and samples for what later kinds of run
-- (code-generation rounds, agent steps) need beyond the fixed columns, and an index for
-- `wand runs list --kind`.
ALTER TABLE runs ADD COLUMN owner TEXT;
ALTER TABLE runs ADD COLUMN extra TEXT;
ALTER TABLE problems ADD COLUMN extra TEXT;
ALTER TABLE samples ADD COLUMN extra TEXT;
CREATE INDEX runs_by_kind ON runs (kind, created_at);
