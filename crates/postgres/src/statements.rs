//! The statements of the hot paths, prepared once per connection (a statement sent as text
//! costs an extra round trip to be parsed every time).

use tokio_postgres::{Client, Statement};

/// What the writer connection runs for every batch.
pub(crate) struct WriteStatements {
    /// The shard's fencing token, share-locked until the group commits.
    pub fence: Statement,
    pub execution: Statement,
    pub current: Statement,
    /// Every new event of a run in one statement (`unnest` of the ids and the encoded events).
    pub history: Statement,
    pub visibility: Statement,
    /// A run's rows, table by table.
    pub delete: Vec<Statement>,
}

impl WriteStatements {
    pub async fn prepare(c: &Client) -> Result<WriteStatements, tokio_postgres::Error> {
        let mut delete = Vec::new();
        for table in ["history", "visibility", "executions", "current_executions"] {
            delete.push(
                c.prepare(&format!(
                    "DELETE FROM {table} WHERE namespace_id = $1 AND run_id = $2"
                ))
                .await?,
            );
        }
        Ok(WriteStatements {
            fence: c
                .prepare("SELECT range_id FROM shards WHERE shard_id = $1 FOR SHARE")
                .await?,
            execution: c
                .prepare(
                    "INSERT INTO executions
                        (namespace_id, run_id, workflow_id, shard_id, status, open, state, wake_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                     ON CONFLICT (namespace_id, run_id) DO UPDATE
                     SET status = EXCLUDED.status, open = EXCLUDED.open, state = EXCLUDED.state,
                         wake_at = EXCLUDED.wake_at",
                )
                .await?,
            current: c
                .prepare(
                    "INSERT INTO current_executions (namespace_id, workflow_id, run_id)
                     VALUES ($1, $2, $3)
                     ON CONFLICT (namespace_id, workflow_id) DO UPDATE SET run_id = EXCLUDED.run_id",
                )
                .await?,
            history: c
                .prepare(
                    "INSERT INTO history (namespace_id, run_id, event_id, data)
                     SELECT $1, $2, e.id, e.data
                     FROM unnest($3::bigint[], $4::bytea[]) AS e(id, data)",
                )
                .await?,
            visibility: c
                .prepare(
                    "INSERT INTO visibility (namespace_id, run_id, workflow_id, workflow_type,
                        task_queue, status, start_time, execution_time, close_time,
                        execution_duration, history_length, history_size_bytes,
                        state_transition_count, parent_workflow_id, root_workflow_id,
                        search_attributes, sort_key, info)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
                        $16::text::jsonb, $17, $18)
                     ON CONFLICT (namespace_id, run_id) DO UPDATE SET
                        status = EXCLUDED.status, close_time = EXCLUDED.close_time,
                        execution_duration = EXCLUDED.execution_duration,
                        history_length = EXCLUDED.history_length,
                        history_size_bytes = EXCLUDED.history_size_bytes,
                        state_transition_count = EXCLUDED.state_transition_count,
                        search_attributes = EXCLUDED.search_attributes,
                        sort_key = EXCLUDED.sort_key, info = EXCLUDED.info,
                        execution_time = EXCLUDED.execution_time",
                )
                .await?,
            delete,
        })
    }
}

/// What reader connections run most.
pub(crate) struct ReadStatements {
    pub execution: Statement,
    pub current: Statement,
    pub events: Statement,
}

impl ReadStatements {
    pub async fn prepare(c: &Client) -> Result<ReadStatements, tokio_postgres::Error> {
        Ok(ReadStatements {
            execution: c
                .prepare("SELECT state FROM executions WHERE namespace_id = $1 AND run_id = $2")
                .await?,
            current: c
                .prepare(
                    "SELECT run_id FROM current_executions
                     WHERE namespace_id = $1 AND workflow_id = $2",
                )
                .await?,
            events: c
                .prepare(
                    "SELECT data FROM history
                     WHERE namespace_id = $1 AND run_id = $2 AND event_id >= $3
                     ORDER BY event_id LIMIT $4",
                )
                .await?,
        })
    }
}
