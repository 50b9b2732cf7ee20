-- Perdure's PostgreSQL schema v1: the tables of SQLite's schema v1-v5 in one step. Events and
-- states are opaque encoded protobuf; only indexed columns are plain. Every integer is BIGINT
-- (query parameters are 64-bit) and text that visibility queries compare or order uses the "C"
-- collation, so every backend orders rows the same way (byte order).
CREATE TABLE shards (
    shard_id BIGINT PRIMARY KEY,
    range_id BIGINT NOT NULL,
    owner TEXT NOT NULL
);
CREATE TABLE namespaces (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    data BYTEA NOT NULL
);
CREATE TABLE executions (
    namespace_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    workflow_id TEXT NOT NULL,
    shard_id BIGINT NOT NULL,
    status BIGINT NOT NULL,
    open BOOLEAN NOT NULL,
    state BYTEA NOT NULL,
    PRIMARY KEY (namespace_id, run_id)
);
CREATE INDEX executions_open ON executions (shard_id) WHERE open;
CREATE TABLE current_executions (
    namespace_id TEXT NOT NULL,
    workflow_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    PRIMARY KEY (namespace_id, workflow_id)
);
CREATE TABLE history (
    namespace_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    event_id BIGINT NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (namespace_id, run_id, event_id)
);
CREATE TABLE visibility (
    namespace_id TEXT COLLATE "C" NOT NULL,
    run_id TEXT COLLATE "C" NOT NULL,
    workflow_id TEXT COLLATE "C" NOT NULL,
    workflow_type TEXT COLLATE "C" NOT NULL,
    task_queue TEXT COLLATE "C" NOT NULL,
    status BIGINT NOT NULL,
    start_time BIGINT NOT NULL,
    execution_time BIGINT NOT NULL,
    close_time BIGINT,
    execution_duration BIGINT,
    history_length BIGINT NOT NULL,
    history_size_bytes BIGINT NOT NULL,
    state_transition_count BIGINT NOT NULL,
    parent_workflow_id TEXT COLLATE "C",
    root_workflow_id TEXT COLLATE "C",
    search_attributes JSONB NOT NULL,
    sort_key BIGINT NOT NULL,
    info BYTEA NOT NULL,
    PRIMARY KEY (namespace_id, run_id)
);
CREATE INDEX visibility_sort ON visibility (namespace_id, sort_key DESC, run_id DESC);
CREATE INDEX visibility_type ON visibility (namespace_id, workflow_type, sort_key DESC);
CREATE INDEX visibility_wid ON visibility (namespace_id, workflow_id);
CREATE INDEX visibility_status ON visibility (namespace_id, status, sort_key DESC);
CREATE INDEX visibility_task_queue ON visibility (namespace_id, task_queue);
CREATE INDEX visibility_start ON visibility (namespace_id, start_time);
CREATE INDEX visibility_close ON visibility (namespace_id, close_time);
-- Serves `Attr = value` on lists (`?`) and containment on custom attributes.
CREATE INDEX visibility_search_attributes ON visibility USING GIN (search_attributes);
CREATE TABLE cluster_metadata (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE batch_jobs (
    namespace_id TEXT COLLATE "C" NOT NULL,
    job_id TEXT COLLATE "C" NOT NULL,
    start_time BIGINT NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (namespace_id, job_id)
);
CREATE INDEX batch_jobs_by_start ON batch_jobs (namespace_id, start_time DESC, job_id DESC);
CREATE TABLE schedules (
    namespace_id TEXT COLLATE "C" NOT NULL,
    schedule_id TEXT COLLATE "C" NOT NULL,
    next_wake BIGINT,
    data BYTEA NOT NULL,
    PRIMARY KEY (namespace_id, schedule_id)
);
CREATE INDEX schedules_by_wake ON schedules (next_wake) WHERE next_wake IS NOT NULL;
CREATE TABLE worker_deployments (
    namespace_id TEXT COLLATE "C" NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (namespace_id, name)
);
