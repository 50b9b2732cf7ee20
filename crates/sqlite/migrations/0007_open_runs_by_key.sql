-- Perdure schema v7: open runs indexed by key, so start-up reads them a page at a time in
-- (namespace_id, run_id) order without scanning closed runs.
DROP INDEX executions_open;
CREATE INDEX executions_open ON executions (namespace_id, run_id) WHERE open = 1;
