-- The control plane's store: runs, their step logs and artifacts, the audit chain,
-- idempotency keys and settings (the halt switch).
CREATE TABLE runs (
  seq            INTEGER PRIMARY KEY AUTOINCREMENT,  -- order of acceptance; cursors page by it
  id             TEXT NOT NULL UNIQUE,
  experiment     TEXT NOT NULL,
  state          TEXT NOT NULL CHECK (state IN ('queued','running','completed','failed','cancelled','interrupted')),
  verdict        TEXT CHECK (verdict IS NULL OR verdict IN ('confirmed','refuted','inconclusive')),
  verdict_reason TEXT NOT NULL DEFAULT '',
  request_json   TEXT NOT NULL,   -- modes, params, note, keep_artifacts, repeat, timeout_seconds
  result_json    TEXT NOT NULL DEFAULT '{}',  -- evidence, repetitions, stack, configuration…
  progress       REAL NOT NULL DEFAULT 0,
  progress_step  TEXT NOT NULL DEFAULT '',
  error          TEXT,
  actor          TEXT NOT NULL,
  created_at     TEXT NOT NULL,
  started_at     TEXT,
  finished_at    TEXT
);
CREATE INDEX runs_by_experiment ON runs (experiment, seq);
CREATE INDEX runs_by_state ON runs (state, seq);

CREATE TABLE run_steps (
  run_id  TEXT NOT NULL REFERENCES runs (id),
  seq     INTEGER NOT NULL,
  at      TEXT NOT NULL,
  message TEXT NOT NULL,
  PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;

-- What a run created on the stack, recorded as it happens so cleanup after a crash knows.
CREATE TABLE run_artifacts (
  run_id TEXT NOT NULL REFERENCES runs (id),
  mode   TEXT NOT NULL,
  kind   TEXT NOT NULL,
  name   TEXT NOT NULL,
  PRIMARY KEY (run_id, mode, kind, name)
) WITHOUT ROWID;

CREATE TABLE audit (
  seq        INTEGER PRIMARY KEY,
  time       TEXT NOT NULL,
  actor      TEXT NOT NULL,
  action     TEXT NOT NULL,
  target     TEXT NOT NULL,
  request_id TEXT NOT NULL,
  before     TEXT NOT NULL,
  after      TEXT NOT NULL,
  prev_hash  TEXT NOT NULL,
  hash       TEXT NOT NULL
);
CREATE INDEX audit_by_actor ON audit (actor, seq);
CREATE INDEX audit_by_action ON audit (action, seq);
CREATE INDEX audit_by_target ON audit (target, seq);

-- Append-only: the server never updates or deletes audit rows; these make an accidental
-- attempt fail loudly. (Someone with the file can still drop them — /audit/verify finds that.)
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;

CREATE TABLE idempotency_keys (
  actor      TEXT NOT NULL,
  key        TEXT NOT NULL,
  body_hash  TEXT NOT NULL,
  run_id     TEXT NOT NULL,
  created_at TEXT NOT NULL,
  PRIMARY KEY (actor, key)
) WITHOUT ROWID;

CREATE TABLE settings (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;
