-- Perdure schema v4: schedules (CreateSchedule), one row per namespace and schedule id. `data` is
-- the encoded schedule record; `next_wake` (Unix nanoseconds, NULL: only a request wakes it) is
-- when the scheduler must next look at it.
CREATE TABLE schedules (
    namespace_id TEXT NOT NULL,
    schedule_id TEXT NOT NULL,
    next_wake INTEGER,
    data BLOB NOT NULL,
    PRIMARY KEY (namespace_id, schedule_id)
);
CREATE INDEX schedules_by_wake ON schedules (next_wake) WHERE next_wake IS NOT NULL;
