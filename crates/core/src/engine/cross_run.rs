//! Cross-run work carried out after a commit: starting children, delivering external signals
//! and cancels, notifying parents, and applying parent close policies.

use perdure_proto::api::common::v1::WorkflowExecution;
use perdure_proto::api::enums::v1::{
    ParentClosePolicy, WorkflowIdConflictPolicy as Conflict, WorkflowIdReusePolicy as Reuse,
};
use perdure_proto::api::history::v1::StartChildWorkflowExecutionInitiatedEventAttributes;
use perdure_proto::api::workflowservice::v1::*;
use prost::Message;

use super::Engine;
use super::control::closed_error;
use super::start::{StartRequest, StartSpec};
use crate::error::{Error, Result};
use crate::matching::RunKey;
use crate::mutable::SignalParams;

impl Engine {
    /// Starts the child recorded under `initiated` in the parent run `parent`.
    pub(crate) async fn start_child(&self, parent: RunKey, initiated: i64) -> Result<()> {
        let entry = self.entry(&parent).await?;
        let (attrs, parent_state, user_metadata) = {
            let d = entry.data.lock().await;
            let Some(c) = d
                .state
                .children
                .iter()
                .find(|c| c.initiated_event_id == initiated)
            else {
                return Ok(());
            };
            if !c.run_id.is_empty() {
                return Ok(());
            }
            let a =
                StartChildWorkflowExecutionInitiatedEventAttributes::decode(c.initiated.as_slice())
                    .map_err(|e| Error::Internal(e.to_string()))?;
            (a, d.state.clone(), c.user_metadata.clone())
        };
        let owner = self
            .namespace(&attrs.namespace)
            .ok()
            .and_then(|ns| self.remote_workflow(&ns.id, &attrs.workflow_id));
        let result = match owner {
            Some(owner) => {
                self.start_child_remote(
                    &owner,
                    &parent_state,
                    initiated,
                    &attrs,
                    user_metadata.as_ref(),
                )
                .await
            }
            None => {
                self.start_child_here(attrs, &parent_state, initiated, user_metadata)
                    .await
            }
        };
        match result {
            Ok(run_id) => {
                self.mutate(parent, move |tx, _| {
                    tx.child_started(initiated, &run_id);
                    Ok(())
                })
                .await
            }
            Err(Error::AlreadyStarted { .. }) | Err(Error::NamespaceNotFound(_)) => {
                self.mutate(parent, move |tx, _| {
                    tx.child_start_failed(initiated);
                    Ok(())
                })
                .await
            }
            Err(e) => Err(e),
        }
    }

    /// Starts a child whose workflow id this engine owns; returns its run id.
    pub(crate) async fn start_child_here(
        &self,
        attrs: StartChildWorkflowExecutionInitiatedEventAttributes,
        parent_state: &crate::state::ExecutionState,
        initiated: i64,
        user_metadata: Option<perdure_proto::api::sdk::v1::UserMetadata>,
    ) -> Result<String> {
        let ns = self.namespace(&attrs.namespace)?;
        let reuse = Reuse::try_from(attrs.workflow_id_reuse_policy).unwrap_or(Reuse::Unspecified);
        let p = self.start_params(
            &ns,
            StartRequest::child(attrs, parent_state, initiated, user_metadata),
        )?;
        let o = self
            .start_with_policies(StartSpec {
                params: p,
                reuse,
                conflict: Conflict::Fail,
                eager: None,
            })
            .await?;
        Ok(o.run_id)
    }

    /// Delivers a signal-external or cancel-external request and records the outcome.
    pub(crate) async fn deliver_external(&self, source: RunKey, initiated: i64) -> Result<()> {
        let entry = self.entry(&source).await?;
        let (r, src) = {
            let d = entry.data.lock().await;
            let Some(r) = d
                .state
                .external_requests
                .iter()
                .find(|r| r.initiated_event_id == initiated)
            else {
                return Ok(());
            };
            (r.clone(), d.state.clone())
        };
        let owner = self
            .namespace(&r.namespace)
            .ok()
            .and_then(|ns| self.remote_workflow(&ns.id, &r.workflow_id));
        let target = match owner {
            Some(owner) => {
                match self
                    .deliver_external_remote(&owner, &r, &src, initiated)
                    .await
                {
                    Ok(true) => Ok(()),
                    Ok(false) => Err(Error::NotFound(String::new())),
                    Err(e) => Err(e),
                }
            }
            None => self
                .deliver_here(
                    r,
                    initiated,
                    src.workflow_id.clone(),
                    src.run_id.clone(),
                    src.identity.clone(),
                )
                .await
                .and_then(|ok| {
                    if ok {
                        Ok(())
                    } else {
                        Err(Error::NotFound(String::new()))
                    }
                }),
        };
        let ok = match target {
            Ok(()) => true,
            Err(Error::NotFound(_))
            | Err(Error::NamespaceNotFound(_))
            | Err(Error::InvalidArgument(_)) => false,
            Err(e) => return Err(e),
        };
        self.mutate(source, move |tx, _| {
            tx.external_done(initiated, ok);
            Ok(())
        })
        .await
    }

    /// Applies a signal- or cancel-external request to its target, whose workflow id this engine
    /// owns; `Ok(false)` when the target does not exist or refuses it for good.
    pub(crate) async fn deliver_here(
        &self,
        r: crate::state::ExternalRequestState,
        initiated: i64,
        source_workflow_id: String,
        source_run_id: String,
        identity: String,
    ) -> Result<bool> {
        let target = async {
            let ns = self.namespace(&r.namespace)?;
            let key = self
                .resolve(
                    &ns.id,
                    Some(&WorkflowExecution {
                        workflow_id: r.workflow_id.clone(),
                        run_id: r.run_id.clone(),
                    }),
                )
                .await?;
            let request_id = format!("{source_run_id}:{initiated}");
            let external = WorkflowExecution {
                workflow_id: source_workflow_id,
                run_id: source_run_id,
            };
            self.mutate(key, move |tx, _| {
                if !tx.is_running() {
                    // As in Temporal, asking a closed run to cancel succeeds (and does nothing);
                    // a signal to it fails.
                    return if r.cancel {
                        Ok(())
                    } else {
                        Err(closed_error())
                    };
                }
                if r.cancel {
                    tx.request_cancel(
                        &r.reason,
                        &identity,
                        &request_id,
                        Some((initiated, external)),
                    );
                } else {
                    tx.signal(SignalParams {
                        name: r.signal_name.clone(),
                        input: r.input.clone(),
                        header: r.header.clone(),
                        identity,
                        request_id,
                        external: Some(external),
                    });
                }
                Ok(())
            })
            .await
        }
        .await;
        match target {
            Ok(()) => Ok(true),
            Err(Error::NotFound(_))
            | Err(Error::NamespaceNotFound(_))
            | Err(Error::InvalidArgument(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Records a closed child in its parent, whose workflow id this engine owns.
    pub(crate) async fn child_closed_here(
        &self,
        parent: RunKey,
        initiated: i64,
        child_run_id: String,
        close: perdure_proto::api::history::v1::history_event::Attributes,
    ) -> Result<()> {
        match self
            .mutate(parent, move |tx, _| {
                if tx.is_running() {
                    tx.child_closed(initiated, &child_run_id, &close);
                }
                Ok(())
            })
            .await
        {
            Ok(()) | Err(Error::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Reports a closed child run to its parent, then marks it notified.
    pub(crate) async fn notify_parent(&self, child: RunKey) -> Result<()> {
        let entry = self.entry(&child).await?;
        let (parent, close, run_id) = {
            let d = entry.data.lock().await;
            let Some(p) = d.state.parent.clone() else {
                return Ok(());
            };
            if d.state.parent_notified || d.state.close_event_id == 0 {
                return Ok(());
            }
            let id = d.state.close_event_id;
            let Some(ev) = self.history_event(&d, id).await? else {
                return Ok(());
            };
            if ev.attributes.is_none() {
                return Ok(());
            }
            (p, ev, d.state.run_id.clone())
        };
        match self.remote_workflow(&parent.namespace_id, &parent.workflow_id) {
            Some(owner) => {
                self.notify_parent_remote(&owner, &parent, &run_id, &close)
                    .await?
            }
            None => {
                let pkey = RunKey {
                    namespace_id: parent.namespace_id.clone(),
                    run_id: parent.run_id.clone(),
                };
                let attrs = close.attributes.expect("checked above");
                self.child_closed_here(pkey, parent.initiated_event_id, run_id, attrs)
                    .await?
            }
        }
        self.mutate(child, |tx, _| {
            tx.state.parent_notified = true;
            tx.changed = true;
            Ok(())
        })
        .await
    }

    pub(crate) async fn apply_parent_close_policy(
        &self,
        namespace: String,
        children: Vec<crate::state::ChildState>,
    ) {
        for c in children {
            let policy = ParentClosePolicy::try_from(c.parent_close_policy)
                .unwrap_or(ParentClosePolicy::Terminate);
            let ns = if c.namespace.is_empty() {
                namespace.clone()
            } else {
                c.namespace.clone()
            };
            let exec = Some(WorkflowExecution {
                workflow_id: c.workflow_id.clone(),
                run_id: String::new(),
            });
            if policy == ParentClosePolicy::Abandon {
                continue;
            }
            // The child may live on another process that is briefly away (the cluster
            // changing): try again for about a minute.
            let mut backoff = std::time::Duration::from_millis(50);
            let mut attempt = 0;
            let r = loop {
                let (ns, exec) = (ns.clone(), exec.clone());
                let r = if policy == ParentClosePolicy::RequestCancel {
                    self.request_cancel(RequestCancelWorkflowExecutionRequest {
                        namespace: ns,
                        workflow_execution: exec,
                        identity: "perdure-server".into(),
                        reason: "by parent close policy".into(),
                        ..Default::default()
                    })
                    .await
                } else {
                    self.terminate(TerminateWorkflowExecutionRequest {
                        namespace: ns,
                        workflow_execution: exec,
                        reason: "by parent close policy".into(),
                        identity: "perdure-server".into(),
                        ..Default::default()
                    })
                    .await
                };
                match r {
                    Err(e) if e.is_retryable() && attempt < 40 => {
                        attempt += 1;
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(std::time::Duration::from_secs(2));
                    }
                    r => break r,
                }
            };
            if let Err(e) = r {
                tracing::debug!(%e, child = %c.workflow_id, "parent close policy not applied");
            }
        }
    }
}
