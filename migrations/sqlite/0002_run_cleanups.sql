-- A run's cleanup that has not finished, or that finished later than the run: written with the
-- run's final state when its cleanup could not remove everything, at start for runs whose
-- cleanup never ran (killed mid-run), and by DELETE /runs/{id}/artifacts for a kept run. The
-- retrier (server/runs/cleanup_retrier) tries again while the row is 'pending'; 'done' rows stay
-- so that a run is swept once, and the run page can say when its artifacts went.
CREATE TABLE run_cleanups (
  run_id          TEXT PRIMARY KEY REFERENCES runs (id),
  state           TEXT NOT NULL CHECK (state IN ('pending','done','given_up')),
  reason          TEXT NOT NULL,            -- why there is a cleanup to do
  artifacts_json  TEXT NOT NULL,            -- what is left: [{"kind","name"}]
  attempts        INTEGER NOT NULL DEFAULT 0,  -- attempts that ran (the parts were healthy)
  last_error      TEXT,                     -- the last attempt's error (each is in the step log)
  next_attempt_at TEXT NOT NULL,
  created_at      TEXT NOT NULL,
  updated_at      TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX run_cleanups_by_state ON run_cleanups (state, next_attempt_at);
