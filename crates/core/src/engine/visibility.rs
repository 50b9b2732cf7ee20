//! Visibility: ListWorkflowExecutions and CountWorkflowExecutions, with `ListToken` paging.

use perdure_proto::api::enums::v1::IndexedValueType;
use perdure_proto::api::workflowservice::v1::*;
use prost::Message;

use super::Engine;
use crate::error::{Error, Result};

impl Engine {
    /// ListWorkflowExecutions.
    pub async fn list(
        &self,
        req: ListWorkflowExecutionsRequest,
    ) -> Result<ListWorkflowExecutionsResponse> {
        let ns = self.namespace(&req.namespace)?;
        let compiled = self.compile_query(&ns, &req.query)?;
        if compiled.group_by_status {
            return Err(Error::InvalidArgument(
                "invalid query: 'group by' clause is only supported for count query".into(),
            ));
        }
        let after = if req.next_page_token.is_empty() {
            None
        } else {
            let t = ListToken::decode(req.next_page_token.as_slice())
                .map_err(|_| Error::InvalidArgument("Invalid NextPageToken.".into()))?;
            Some((t.sort_key, t.run_id))
        };
        let page = if req.page_size <= 0 {
            1000
        } else {
            req.page_size as usize
        };
        let s = self.inner.store.clone();
        let ns_id = ns.id.clone();
        let rows =
            tokio::task::spawn_blocking(move || s.list_visibility(&ns_id, &compiled, page, after))
                .await
                .map_err(|e| Error::Internal(e.to_string()))??;
        let next_page_token = if rows.len() == page {
            rows.last()
                .map(|(_, (k, r))| {
                    ListToken {
                        sort_key: *k,
                        run_id: r.clone(),
                    }
                    .encode_to_vec()
                })
                .unwrap_or_default()
        } else {
            vec![]
        };
        let mut executions = Vec::with_capacity(rows.len());
        for (info, _) in rows {
            executions.push(
                perdure_proto::api::workflow::v1::WorkflowExecutionInfo::decode(info.as_slice())
                    .map_err(|e| Error::Internal(format!("corrupt visibility row: {e}")))?,
            );
        }
        Ok(ListWorkflowExecutionsResponse {
            executions,
            next_page_token,
        })
    }

    /// CountWorkflowExecutions.
    pub async fn count(
        &self,
        req: CountWorkflowExecutionsRequest,
    ) -> Result<CountWorkflowExecutionsResponse> {
        let ns = self.namespace(&req.namespace)?;
        let compiled = self.compile_query(&ns, &req.query)?;
        let grouped = compiled.group_by_status;
        let s = self.inner.store.clone();
        let ns_id = ns.id.clone();
        let (count, groups) =
            tokio::task::spawn_blocking(move || s.count_visibility(&ns_id, &compiled))
                .await
                .map_err(|e| Error::Internal(e.to_string()))??;
        let groups = if grouped {
            groups
                .into_iter()
                .map(|(status, n)| {
                    let name = perdure_query::status_name(status).unwrap_or("Unspecified");
                    count_workflow_executions_response::AggregationGroup {
                        group_values: vec![perdure_proto::api::common::v1::Payload {
                            metadata: [
                                ("encoding".to_string(), b"json/plain".to_vec()),
                                ("type".to_string(), b"Keyword".to_vec()),
                            ]
                            .into_iter()
                            .collect(),
                            data: serde_json::to_vec(name).unwrap_or_default(),
                            ..Default::default()
                        }],
                        count: n,
                    }
                })
                .collect()
        } else {
            vec![]
        };
        Ok(CountWorkflowExecutionsResponse { count, groups })
    }

    pub(super) fn compile_query(
        &self,
        ns: &super::Namespace,
        q: &str,
    ) -> Result<perdure_query::VisibilityQuery> {
        let lookup = |name: &str| {
            ns.record
                .search_attributes
                .get(name)
                .and_then(|t| IndexedValueType::try_from(*t).ok())
                .map(crate::info::query_type)
        };
        perdure_query::parse(q, &lookup).map_err(|e| Error::InvalidArgument(e.to_string()))
    }
}

/// Page token of ListWorkflowExecutions.
#[derive(Clone, PartialEq, prost::Message)]
struct ListToken {
    #[prost(int64, tag = "1")]
    sort_key: i64,
    #[prost(string, tag = "2")]
    run_id: String,
}
