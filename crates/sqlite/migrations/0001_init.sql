-- Perdure schema v1. Events and states are opaque encoded protobuf; only indexed columns are plain.
CREATE TABLE shards (
    shard_id INTEGER PRIMARY KEY,
    range_id INTEGER NOT NULL,
    owner TEXT NOT NULL
);
CREATE TABLE namespaces (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    data BLOB NOT NULL
);
CREATE TABLE executions (
    namespace_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    workflow_id TEXT NOT NULL,
    shard_id INTEGER NOT NULL,
    status INTEGER NOT NULL,
    open INTEGER NOT NULL,
    state BLOB NOT NULL,
    PRIMARY KEY (namespace_id, run_id)
);
CREATE INDEX executions_open ON executions (open) WHERE open = 1;
CREATE TABLE current_executions (
    namespace_id TEXT NOT NULL,
    workflow_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    PRIMARY KEY (namespace_id, workflow_id)
);
CREATE TABLE history (
    namespace_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    event_id INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (namespace_id, run_id, event_id)
) WITHOUT ROWID;
CREATE TABLE visibility (
    namespace_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    workflow_id TEXT NOT NULL,
    workflow_type TEXT NOT NULL,
    task_queue TEXT NOT NULL,
    status INTEGER NOT NULL,
    start_time INTEGER NOT NULL,
    execution_time INTEGER NOT NULL,
    close_time INTEGER,
    execution_duration INTEGER,
    history_length INTEGER NOT NULL,
    history_size_bytes INTEGER NOT NULL,
    state_transition_count INTEGER NOT NULL,
    parent_workflow_id TEXT,
    root_workflow_id TEXT,
    search_attributes TEXT NOT NULL,
    sort_key INTEGER NOT NULL,
    info BLOB NOT NULL,
    PRIMARY KEY (namespace_id, run_id)
);
CREATE INDEX visibility_sort ON visibility (namespace_id, sort_key DESC, run_id DESC);
CREATE INDEX visibility_type ON visibility (namespace_id, workflow_type);
CREATE INDEX visibility_wid ON visibility (namespace_id, workflow_id);
CREATE INDEX visibility_status ON visibility (namespace_id, status);
