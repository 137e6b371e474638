-- E-012: Kafka transactions and the side effects a consumer applies from them. Every row carries
-- run_ns, so a run's rows are removed by cleanup like the pipeline's.

-- What became of each transaction of the run's transactional producer, as its API answered:
-- outcome is committed (commit_transaction returned OK), aborted (abort_transaction returned OK)
-- or fenced (a second producer with the same transactional.id took over while it was open; its
-- commit was refused and the coordinator aborted it). records = records produced in it.
CREATE TABLE IF NOT EXISTS kafka_txn (
  run_ns VARCHAR(64) NOT NULL,
  txn_no INT NOT NULL,
  outcome VARCHAR(16) NOT NULL,
  records INT NOT NULL,
  ended_at_us BIGINT NOT NULL,
  PRIMARY KEY (run_ns, txn_no)
) ENGINE=InnoDB;

-- One row per record the consumer applied (its side effect), with the transaction number and
-- offset the record carried; phantoms are rows whose transaction did not commit.
CREATE TABLE IF NOT EXISTS txn_effect (
  id BIGINT NOT NULL AUTO_INCREMENT,
  run_ns VARCHAR(64) NOT NULL,
  event_id VARCHAR(96) NOT NULL,
  txn_no INT NOT NULL,
  kafka_partition INT NOT NULL,
  kafka_offset BIGINT NOT NULL,
  applied_at_us BIGINT NOT NULL,
  PRIMARY KEY (id),
  KEY ix_txn_effect (run_ns, txn_no)
) ENGINE=InnoDB;
