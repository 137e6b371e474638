-- outbox_event.published_at_us: NULL -> NOT NULL DEFAULT 0, where 0 means "pending" (was NULL)
-- and a publication time (microseconds since the epoch, always > 0) means published. Why: the
-- relay's mark was a NULL -> value UPDATE, which grows every row (a NULL BIGINT takes no bytes
-- in the row) so InnoDB rewrites it instead of updating it in place; 0 -> value is the same
-- size. The pending index ix_outbox_pending (run_ns, published_at_us, id) is unchanged: the
-- relay's SELECT reads the (run_ns, 0) range in id order. Measured in bench/README.md (relay).
-- Safe on a database with 001 applied and rows in it: pending rows (NULL) become pending rows
-- (0) first, and both statements can run again if the second one fails (e.g. an older
-- command-service inserted a NULL in between: the migration is then not recorded and reruns).
UPDATE outbox_event SET published_at_us = 0 WHERE published_at_us IS NULL;
ALTER TABLE outbox_event MODIFY published_at_us BIGINT NOT NULL DEFAULT 0;
