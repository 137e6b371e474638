-- The experiment schema (EXPERIMENTS.md service roles). Runs share these tables and are kept
-- apart by the run_ns column ("<run namespace>_<mode>"), the first column of every key, so a
-- run's rows are found by index and removed with DELETE ... WHERE run_ns = ?. (A per-run table
-- prefix would mean DDL at run time: metadata locks and migrations that are not applied once.)
-- Times are microseconds since the epoch as BIGINT so they compare across processes.

-- command-service: the domain change.
CREATE TABLE IF NOT EXISTS orders (
  run_ns VARCHAR(64) NOT NULL,
  order_id BIGINT NOT NULL,
  amount BIGINT NOT NULL,
  version INT NOT NULL DEFAULT 1,
  created_at_us BIGINT NOT NULL,
  PRIMARY KEY (run_ns, order_id)
) ENGINE=InnoDB;

-- command-service (outbox mode) writes one row per event in the same transaction;
-- outbox-relay publishes pending rows (FOR UPDATE SKIP LOCKED) and marks them.
CREATE TABLE IF NOT EXISTS outbox_event (
  id BIGINT NOT NULL AUTO_INCREMENT,
  run_ns VARCHAR(64) NOT NULL,
  event_id VARCHAR(96) NOT NULL,
  aggregate_id BIGINT NOT NULL,
  event_type VARCHAR(32) NOT NULL,
  payload VARCHAR(2048) NOT NULL,
  created_at_us BIGINT NOT NULL,
  published_at_us BIGINT NULL,
  attempts INT NOT NULL DEFAULT 0,
  PRIMARY KEY (id),
  UNIQUE KEY uk_outbox_event (run_ns, event_id),
  KEY ix_outbox_pending (run_ns, published_at_us, id)
) ENGINE=InnoDB;

-- consumer-service: dedup record written in the same transaction as the side effect.
CREATE TABLE IF NOT EXISTS processed_event (
  run_ns VARCHAR(64) NOT NULL,
  consumer VARCHAR(64) NOT NULL,
  event_id VARCHAR(96) NOT NULL,
  processed_at_us BIGINT NOT NULL,
  PRIMARY KEY (run_ns, consumer, event_id)
) ENGINE=InnoDB;

-- consumer-service: the read model built from events.
CREATE TABLE IF NOT EXISTS order_projection (
  run_ns VARCHAR(64) NOT NULL,
  order_id BIGINT NOT NULL,
  amount BIGINT NOT NULL,
  version INT NOT NULL,
  applied_count INT NOT NULL DEFAULT 1,
  committed_at_us BIGINT NOT NULL,
  projected_at_us BIGINT NOT NULL,
  PRIMARY KEY (run_ns, order_id)
) ENGINE=InnoDB;

-- consumer-service: one row per application of an event (a ledger entry, an e-mail sent…),
-- so a duplicate application is visible as a second row.
CREATE TABLE IF NOT EXISTS side_effect (
  id BIGINT NOT NULL AUTO_INCREMENT,
  run_ns VARCHAR(64) NOT NULL,
  event_id VARCHAR(96) NOT NULL,
  source VARCHAR(32) NOT NULL,
  applied_at_us BIGINT NOT NULL,
  PRIMARY KEY (id),
  KEY ix_side_effect (run_ns, event_id)
) ENGINE=InnoDB;

-- replay-worker: one row per DLQ message considered in a replay round.
CREATE TABLE IF NOT EXISTS replay_audit (
  id BIGINT NOT NULL AUTO_INCREMENT,
  run_ns VARCHAR(64) NOT NULL,
  replay_round INT NOT NULL,
  event_id VARCHAR(96) NOT NULL,
  origin_topic VARCHAR(249) NOT NULL,
  origin_partition INT NOT NULL,
  origin_offset BIGINT NOT NULL,
  outcome VARCHAR(32) NOT NULL,
  replayed_at_us BIGINT NOT NULL,
  PRIMARY KEY (id),
  KEY ix_replay_audit (run_ns, replay_round)
) ENGINE=InnoDB;

-- query-service: the source of truth behind the cache (E-008).
CREATE TABLE IF NOT EXISTS product (
  run_ns VARCHAR(64) NOT NULL,
  product_id BIGINT NOT NULL,
  name VARCHAR(128) NOT NULL,
  price BIGINT NOT NULL,
  version INT NOT NULL,
  PRIMARY KEY (run_ns, product_id)
) ENGINE=InnoDB;

-- query-service: one row per load query the database served, written by the load itself, so
-- DB reads are counted in the system of record.
CREATE TABLE IF NOT EXISTS db_read_log (
  id BIGINT NOT NULL AUTO_INCREMENT,
  run_ns VARCHAR(64) NOT NULL,
  instance INT NOT NULL,
  read_at_us BIGINT NOT NULL,
  PRIMARY KEY (id),
  KEY ix_db_read_log (run_ns, read_at_us)
) ENGINE=InnoDB;
