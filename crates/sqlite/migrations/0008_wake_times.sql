-- Perdure schema v8: each open run's wake time (its earliest timer or deadline in milliseconds
-- since the Unix epoch, 0 while a task waits to be dispatched, NULL when only a request can
-- wake it), indexed so an engine reads only the runs that fall due soon. Runs written before
-- this version get 0: they are read once at the next start, as every open run was before.
ALTER TABLE executions ADD COLUMN wake_at INTEGER;
UPDATE executions SET wake_at = 0 WHERE open = 1;
CREATE INDEX executions_wake ON executions (wake_at, namespace_id, run_id)
    WHERE open = 1 AND wake_at IS NOT NULL;
DROP INDEX executions_open;
