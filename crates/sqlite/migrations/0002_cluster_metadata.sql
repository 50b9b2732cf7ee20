-- Perdure schema v2: facts about the cluster itself (its id), one row per key.
CREATE TABLE cluster_metadata (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
