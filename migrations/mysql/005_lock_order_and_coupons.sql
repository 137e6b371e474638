-- Tables of E-019 (transfers between accounts under opposite lock orders) and E-024 (coupon
-- issuance under concurrency). Every row carries run_ns, so cleanup removes a run's rows.

-- E-019: the accounts money moves between; the sum of balances never changes.
CREATE TABLE IF NOT EXISTS transfer_account (
  run_ns VARCHAR(64) NOT NULL,
  account_id BIGINT NOT NULL,
  balance BIGINT NOT NULL,
  PRIMARY KEY (run_ns, account_id)
) ENGINE=InnoDB;

-- E-019: every transfer the workload must carry out, written before any is attempted, so a
-- transfer that is neither applied nor in the DLQ is found by reading back (lost).
CREATE TABLE IF NOT EXISTS transfer_request (
  run_ns VARCHAR(64) NOT NULL,
  transfer_id BIGINT NOT NULL,
  from_account BIGINT NOT NULL,
  to_account BIGINT NOT NULL,
  amount BIGINT NOT NULL,
  PRIMARY KEY (run_ns, transfer_id)
) ENGINE=InnoDB;

-- E-019: one row per applied transfer, inserted in the transfer's own transaction.
CREATE TABLE IF NOT EXISTS transfer_log (
  run_ns VARCHAR(64) NOT NULL,
  transfer_id BIGINT NOT NULL,
  attempts INT NOT NULL,
  applied_at_us BIGINT NOT NULL,
  PRIMARY KEY (run_ns, transfer_id)
) ENGINE=InnoDB;

-- E-019: transfers that still failed after the retries, with the last error.
CREATE TABLE IF NOT EXISTS transfer_dlq (
  run_ns VARCHAR(64) NOT NULL,
  transfer_id BIGINT NOT NULL,
  attempts INT NOT NULL,
  last_errno INT NOT NULL,
  last_error VARCHAR(255) NOT NULL,
  failed_at_us BIGINT NOT NULL,
  PRIMARY KEY (run_ns, transfer_id)
) ENGINE=InnoDB;

-- E-024: a coupon's limited stock, one row per variant (coupon_id names it).
CREATE TABLE IF NOT EXISTS coupon_stock (
  run_ns VARCHAR(64) NOT NULL,
  coupon_id VARCHAR(32) NOT NULL,
  initial_stock BIGINT NOT NULL,
  stock BIGINT NOT NULL,
  PRIMARY KEY (run_ns, coupon_id)
) ENGINE=InnoDB;

-- E-024: one row per coupon issued. The fixes set dedup_user_id (= user_id), so the unique key
-- refuses a second coupon for a user; the anti-pattern leaves it NULL (NULLs never collide), as
-- code without a per-user constraint would, so its duplicates are visible as rows.
CREATE TABLE IF NOT EXISTS coupon_issue (
  id BIGINT NOT NULL AUTO_INCREMENT,
  run_ns VARCHAR(64) NOT NULL,
  coupon_id VARCHAR(32) NOT NULL,
  user_id BIGINT NOT NULL,
  dedup_user_id BIGINT NULL,
  request_no BIGINT NOT NULL,
  issued_at_us BIGINT NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uk_coupon_issue_user (run_ns, coupon_id, dedup_user_id),
  KEY ix_coupon_issue (run_ns, coupon_id, user_id)
) ENGINE=InnoDB;
