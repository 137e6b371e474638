-- Tables of the Redis semantics experiments (E-013, E-039A, E-039B). Every row carries run_ns,
-- so a run's rows are removed by cleanup like the pipeline's.

-- E-013: the truth behind the cache; value and version change in MariaDB transactions.
CREATE TABLE IF NOT EXISTS cache_truth (
  run_ns VARCHAR(64) NOT NULL,
  item_id BIGINT NOT NULL,
  value BIGINT NOT NULL,
  version BIGINT NOT NULL,
  PRIMARY KEY (run_ns, item_id)
) ENGINE=InnoDB;

-- E-039A/B: one row per critical section a lock holder entered, written by the holder itself
-- when it enters and closed when it leaves; overlaps are counted from these rows.
CREATE TABLE IF NOT EXISTS lock_interval (
  id BIGINT NOT NULL AUTO_INCREMENT,
  run_ns VARCHAR(64) NOT NULL,
  scenario VARCHAR(32) NOT NULL,
  holder VARCHAR(64) NOT NULL,
  token BIGINT NOT NULL,
  started_us BIGINT NOT NULL,
  ended_us BIGINT NULL,
  PRIMARY KEY (id),
  KEY ix_lock_interval (run_ns, scenario, started_us)
) ENGINE=InnoDB;

-- E-039B: the protected resource; a fenced store refuses a write whose token is older than the
-- newest it has accepted.
CREATE TABLE IF NOT EXISTS fenced_resource (
  run_ns VARCHAR(64) NOT NULL,
  resource VARCHAR(64) NOT NULL,
  last_token BIGINT NOT NULL,
  value VARCHAR(128) NOT NULL,
  PRIMARY KEY (run_ns, resource)
) ENGINE=InnoDB;

-- E-039B: every write attempted on the resource, with the store's answer (accepted|refused).
CREATE TABLE IF NOT EXISTS fenced_write (
  id BIGINT NOT NULL AUTO_INCREMENT,
  run_ns VARCHAR(64) NOT NULL,
  scenario VARCHAR(32) NOT NULL,
  holder VARCHAR(64) NOT NULL,
  token BIGINT NOT NULL,
  outcome VARCHAR(16) NOT NULL,
  written_at_us BIGINT NOT NULL,
  PRIMARY KEY (id),
  KEY ix_fenced_write (run_ns, scenario)
) ENGINE=InnoDB;
