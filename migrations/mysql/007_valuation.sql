-- The valuation service under test (N03, N04, N06, N21; runners/roles/valuation_service.cc):
-- one row per valued request, written in the service's own transaction (around the downstream
-- call in N04's anti-pattern, after it in the practice), so the run reads back what the service
-- really committed. run_ns = "<ns>_<mode>" first in the key, like every run table; cleanup
-- deletes the run's rows.
CREATE TABLE IF NOT EXISTS valuation (
  run_ns VARCHAR(64) NOT NULL,
  request_id BIGINT NOT NULL,
  item_id BIGINT NOT NULL,
  value BIGINT NOT NULL DEFAULT 0,
  status VARCHAR(16) NOT NULL DEFAULT 'pending',
  created_us BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (run_ns, request_id)
) ENGINE=InnoDB;
