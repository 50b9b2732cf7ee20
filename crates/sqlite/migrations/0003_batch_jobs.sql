-- Perdure schema v3: batch operation jobs (StartBatchOperation), one row per namespace and job id.
CREATE TABLE batch_jobs (
    namespace_id TEXT NOT NULL,
    job_id TEXT NOT NULL,
    start_time INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (namespace_id, job_id)
);
CREATE INDEX batch_jobs_by_start ON batch_jobs (namespace_id, start_time DESC, job_id DESC);
