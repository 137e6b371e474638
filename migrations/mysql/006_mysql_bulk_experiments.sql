-- Tables of E-022 (controlled backfill). Every row carries run_ns, the first column of every
-- key, so a run's rows are found by index and removed by cleanup like the pipeline's.
-- (E-014 creates tables of its own per run, dropped by cleanup: DROP PARTITION removes every row
-- of a partition, whoever wrote it, and a run_ns prefix on the keys changes the plan of the
-- retention DELETE it measures.)

-- E-022: the range a backfill fills. amount_cents is the new column (amount * 100; 0 until
-- backfilled, and amount >= 1); backfill_count counts every backfill write of the row, so a gap
-- (0) and a double (> 1) are read back with SQL; backfilled_by is the number of the worker
-- process that wrote it (0: none); live_updates counts the live load's committed updates of the
-- row. Fixed-width NOT NULL columns, so every write updates the row in place: a NULL -> value
-- write grows the row and InnoDB rewrites it (002), which doubles the redo a backfill writes and
-- would make its cost the schema's rather than the strategy's.
CREATE TABLE IF NOT EXISTS backfill_item (
  run_ns VARCHAR(64) NOT NULL,
  item_id BIGINT NOT NULL,
  amount BIGINT NOT NULL,
  amount_cents BIGINT NOT NULL DEFAULT 0,
  backfill_count INT NOT NULL DEFAULT 0,
  backfilled_by SMALLINT NOT NULL DEFAULT 0,
  live_updates INT NOT NULL DEFAULT 0,
  PRIMARY KEY (run_ns, item_id)
) ENGINE=InnoDB;

-- E-022: one checkpoint per shard of the range [first_id, end_id): next_id is the first id not
-- yet backfilled, moved in the same transaction as the batch it covers, so a process killed at
-- any point leaves a checkpoint that matches the rows.
CREATE TABLE IF NOT EXISTS backfill_checkpoint (
  run_ns VARCHAR(64) NOT NULL,
  shard INT NOT NULL,
  first_id BIGINT NOT NULL,
  end_id BIGINT NOT NULL,
  next_id BIGINT NOT NULL,
  batches INT NOT NULL DEFAULT 0,
  rows_done BIGINT NOT NULL DEFAULT 0,
  updated_by VARCHAR(32) NOT NULL DEFAULT '',
  updated_at_us BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (run_ns, shard)
) ENGINE=InnoDB;
