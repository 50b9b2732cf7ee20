-- Perdure PostgreSQL schema v2: the cluster's processes (one row per node name, refreshed by heartbeats)
-- and its leader (one row: the process that holds every shard, until its lease runs out).
-- Times are Unix milliseconds.
CREATE TABLE cluster_members (
    node TEXT PRIMARY KEY,
    session TEXT NOT NULL,
    address TEXT NOT NULL,
    heartbeat BIGINT NOT NULL
);
CREATE TABLE cluster_leader (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    node TEXT NOT NULL,
    session TEXT NOT NULL,
    address TEXT NOT NULL,
    lease_until BIGINT NOT NULL
);
