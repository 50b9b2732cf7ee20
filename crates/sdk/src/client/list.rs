//! Visibility: [`Client::list_workflows`], [`Client::list_workflows_page`] and
//! [`Client::count_workflows`].

use temporalio_protos::temporal::api::workflow::v1::WorkflowExecutionInfo;
use temporalio_protos::temporal::api::workflowservice::v1 as ws;

use super::rpc::{RPC_TIMEOUT, call};
use super::{Client, Result};
use crate::payload;

/// The count of executions matching a query, with `GROUP BY` groups.
#[derive(Debug, Clone, PartialEq)]
pub struct Count {
    /// All matching executions.
    pub count: i64,
    /// `(group values, count)` per group when the query has `GROUP BY`.
    pub groups: Vec<(Vec<serde_json::Value>, i64)>,
}

impl Client {
    /// Every execution matching a visibility query (`""` for all), newest first, page by page.
    pub async fn list_workflows(&self, query: &str) -> Result<Vec<WorkflowExecutionInfo>> {
        let mut out = Vec::new();
        let mut token = Vec::new();
        loop {
            let (page, next) = self.list_workflows_page(query, 1000, token).await?;
            out.extend(page);
            if next.is_empty() {
                return Ok(out);
            }
            token = next;
        }
    }

    /// One page of a list; returns the rows and the token of the next page (empty at the end).
    pub async fn list_workflows_page(
        &self,
        query: &str,
        page_size: i32,
        next_page_token: Vec<u8>,
    ) -> Result<(Vec<WorkflowExecutionInfo>, Vec<u8>)> {
        let r = ws::ListWorkflowExecutionsRequest {
            namespace: self.inner.namespace.clone(),
            page_size,
            next_page_token,
            query: query.to_string(),
        };
        let resp = call!(
            self.workflow_service(),
            list_workflow_executions,
            r,
            RPC_TIMEOUT
        )?
        .into_inner();
        Ok((resp.executions, resp.next_page_token))
    }

    /// Counts executions matching a visibility query, with groups for `GROUP BY`.
    pub async fn count_workflows(&self, query: &str) -> Result<Count> {
        let r = ws::CountWorkflowExecutionsRequest {
            namespace: self.inner.namespace.clone(),
            query: query.to_string(),
        };
        let resp = call!(
            self.workflow_service(),
            count_workflow_executions,
            r,
            RPC_TIMEOUT
        )?
        .into_inner();
        let groups = resp
            .groups
            .iter()
            .map(|g| {
                let vals = g
                    .group_values
                    .iter()
                    .map(payload::from_payload::<serde_json::Value>)
                    .collect::<Result<Vec<_>, _>>()?;
                Ok((vals, g.count))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Count {
            count: resp.count,
            groups,
        })
    }
}
