-- wand skill library, schema version 1 (src/agent/skills.h): the skills agents saved, and an FTS5
-- index over their names and descriptions for retrieval by BM25. Kept in the run store's SQLite
-- file beside (not inside) the run store's schema, with a version table of its own.
CREATE TABLE agent_schema (
  version INTEGER NOT NULL
);
INSERT INTO agent_schema (version) VALUES (1);

CREATE TABLE skills (
  name TEXT PRIMARY KEY,
  description TEXT NOT NULL,
  signature TEXT NOT NULL,
  code TEXT NOT NULL,
  code_key TEXT NOT NULL,  -- the normalised code: duplicates are found by it
  tests TEXT NOT NULL,
  uses INTEGER NOT NULL DEFAULT 0,
  successes INTEGER NOT NULL DEFAULT 0,
  version INTEGER NOT NULL DEFAULT 1,
  demoted TEXT,            -- why its tests failed; NULL while it is in good standing
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX skills_by_code ON skills (code_key);

-- Names are indexed with underscores as spaces, so "heat_milk" matches a query's "heat" and "milk".
CREATE VIRTUAL TABLE skills_fts USING fts5 (name UNINDEXED, words, description, tokenize = 'porter unicode61');
