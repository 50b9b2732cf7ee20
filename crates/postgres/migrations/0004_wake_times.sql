-- Perdure PostgreSQL schema v4: each open run's wake time (its earliest timer or deadline in
-- milliseconds since the Unix epoch, 0 while a task waits to be dispatched, NULL when only a
-- request can wake it), indexed in the "C" collation so an engine reads only the runs that fall
-- due soon, in the order SQLite and the memory store use. Runs written before this version get
-- 0: they are read once at the next start, as every open run was before.
ALTER TABLE executions ADD COLUMN wake_at BIGINT;
UPDATE executions SET wake_at = 0 WHERE open;
CREATE INDEX executions_wake
    ON executions (wake_at, namespace_id COLLATE "C", run_id COLLATE "C")
    WHERE open AND wake_at IS NOT NULL;
DROP INDEX executions_open_key;
