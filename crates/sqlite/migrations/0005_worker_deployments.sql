-- Perdure schema v5: worker deployments (worker versioning), one row per namespace and
-- deployment name. `data` is the encoded deployment record: its routing config (current and
-- ramping versions) and its versions with their task queues, status and metadata.
CREATE TABLE worker_deployments (
    namespace_id TEXT NOT NULL,
    name TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (namespace_id, name)
);
