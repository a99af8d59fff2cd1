-- wand run store, schema version 1: runs, their problems, and each problem's samples.
-- Portable SQL (SQLite and PostgreSQL): TEXT, INTEGER, BIGINT, DOUBLE PRECISION only; JSON is TEXT;
-- times are ISO 8601 UTC strings, so they sort as text.
CREATE TABLE wand_schema (
  version INTEGER NOT NULL
);
INSERT INTO wand_schema (version) VALUES (1);

CREATE TABLE runs (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  status TEXT NOT NULL,
  created_at TEXT NOT NULL,
  finished_at TEXT,
  dataset TEXT,
  model_spec TEXT,
  model_id TEXT,
  method TEXT,
  prompt_hash TEXT,
  options TEXT,
  seed BIGINT,
  wand_version TEXT,
  total_problems INTEGER,
  summary TEXT
);

CREATE TABLE problems (
  run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  idx INTEGER NOT NULL,
  problem_id TEXT,
  input TEXT,
  expected TEXT,
  answer TEXT,
  correct INTEGER,
  vote TEXT,
  outcome TEXT,
  timings TEXT,
  prompt_tokens BIGINT,
  completion_tokens BIGINT,
  recorded_at TEXT NOT NULL,
  PRIMARY KEY (run_id, idx)
);

CREATE TABLE samples (
  run_id TEXT NOT NULL,
  problem_idx INTEGER NOT NULL,
  idx INTEGER NOT NULL,
  seed BIGINT,
  prompt TEXT,
  completion TEXT,
  program TEXT,
  exec_result TEXT,
  verdict TEXT,
  answer TEXT,
  logprob DOUBLE PRECISION,
  PRIMARY KEY (run_id, problem_idx, idx),
  FOREIGN KEY (run_id, problem_idx) REFERENCES problems (run_id, idx) ON DELETE CASCADE
);
