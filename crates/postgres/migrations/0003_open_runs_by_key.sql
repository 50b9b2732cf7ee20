-- Perdure PostgreSQL schema v3: open runs indexed by key in the "C" collation, so start-up reads
-- them a page at a time in (namespace_id, run_id) order without scanning closed runs.
CREATE INDEX executions_open_key
    ON executions (namespace_id COLLATE "C", run_id COLLATE "C") WHERE open;
