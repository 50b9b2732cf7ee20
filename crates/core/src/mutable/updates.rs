//! Workflow updates: admitting requests and validating and applying the update protocol messages
//! a workflow task completion carries.

use perdure_proto::api::enums::v1::{
    UpdateWorkflowExecutionLifecycleStage as Stage, WorkflowTaskFailedCause as Cause,
};
use perdure_proto::api::failure::v1::Failure;
use perdure_proto::api::failure::v1::failure::FailureInfo;
use perdure_proto::api::history::v1::history_event::Attributes as A;
use perdure_proto::api::history::v1::*;
use perdure_proto::api::protocol::v1::Message;
use perdure_proto::api::update::v1 as upd;
use prost::Message as _;

use crate::state::*;

use super::{Effect, Tx};

/// The state of an update while a completion is validated, named as in Temporal's update
/// state machine (its messages name the state).
#[derive(Clone, Copy, PartialEq, Debug)]
pub(super) enum UpdateValidationState {
    /// Admitted but not delivered with the completed task.
    Admitted,
    /// Delivered with the completed task.
    Sent,
    ProvisionallyAccepted,
    Accepted,
    ProvisionallyCompleted,
    Completed,
}

impl UpdateValidationState {
    fn name(self) -> &'static str {
        match self {
            UpdateValidationState::Admitted => "Admitted",
            UpdateValidationState::Sent => "Sent",
            UpdateValidationState::ProvisionallyAccepted => "ProvisionallyAccepted",
            UpdateValidationState::Accepted => "Accepted",
            UpdateValidationState::ProvisionallyCompleted => "ProvisionallyCompleted",
            UpdateValidationState::Completed => "Completed",
        }
    }
}

impl Tx<'_> {
    /// Fails the started task for an invalid update protocol message, as Temporal does: the
    /// failure carries `message` (already prefixed with the cause name) and a server failure
    /// info, and the updates delivered with this task but not yet accepted are aborted (their
    /// callers get a "not ready" error; a retried request is admitted anew).
    pub(super) fn fail_wft_bad_update_message(
        &mut self,
        w: &WorkflowTaskState,
        message: &str,
        identity: &str,
    ) {
        let before = self.state.updates.len();
        self.state.updates.retain(|u| {
            !(u.stage == Stage::Admitted as i32 && w.delivered_updates.contains(&u.update_id))
        });
        if self.state.updates.len() != before {
            self.effects.push(Effect::UpdatesChanged);
        }
        self.fail_wft(
            Cause::BadUpdateWorkflowExecutionMessage,
            Some(Failure {
                message: message.to_string(),
                failure_info: Some(FailureInfo::ServerFailureInfo(Default::default())),
                ..Default::default()
            }),
            identity,
        );
    }

    /// Validates one update protocol message against the stages the updates of this run reach
    /// while the completion is processed (`states`), in Temporal's words.
    pub(super) fn validate_message(
        &self,
        m: &Message,
        states: &mut Vec<(String, UpdateValidationState)>,
        delivered: &[String],
    ) -> Result<(), String> {
        let id = m.protocol_instance_id.as_str();
        if id.is_empty() {
            return Err("invalid *protocol.Message: protocol_instance_id is not set".into());
        }
        let Some(body) = &m.body else {
            return Err("nil message body".into());
        };
        let i = match states.iter().position(|(u, _)| u == id) {
            Some(i) => i,
            None => {
                let st = match self.state.updates.iter().find(|u| u.update_id == id) {
                    Some(u) if u.stage == Stage::Admitted as i32 => {
                        if delivered.iter().any(|d| d == id) {
                            UpdateValidationState::Sent
                        } else {
                            UpdateValidationState::Admitted
                        }
                    }
                    Some(u) if u.stage == Stage::Accepted as i32 => UpdateValidationState::Accepted,
                    Some(_) => UpdateValidationState::Completed,
                    None => return Err(format!("update {id:?} not found")),
                };
                states.push((id.to_string(), st));
                states.len() - 1
            }
        };
        let state = states[i].1;
        let transition = |kind: &str, allowed: &[UpdateValidationState]| {
            if allowed.contains(&state) {
                Ok(())
            } else {
                Err(format!(
                    "invalid state transition attempted for Update {id}: received *update.{kind} message while in state {}",
                    state.name()
                ))
            }
        };
        let unmarshal = |e: prost::DecodeError| format!("unable to unmarshal request: {e}");
        let not_set =
            |kind: &str, field: &str| format!("invalid *update.{kind}: {field} is not set");
        let t = body.type_url.as_str();
        if t.ends_with("/temporal.api.update.v1.Acceptance") {
            let acc = upd::Acceptance::decode(body.value.as_slice()).map_err(unmarshal)?;
            transition(
                "Acceptance",
                &[UpdateValidationState::Sent, UpdateValidationState::Admitted],
            )?;
            if acc.accepted_request_sequencing_event_id == 0 {
                return Err(not_set(
                    "Acceptance",
                    "accepted_request_sequencing_event_id",
                ));
            }
            if acc.accepted_request_message_id.is_empty() {
                return Err(not_set("Acceptance", "accepted_request_message_id"));
            }
            states[i].1 = UpdateValidationState::ProvisionallyAccepted;
        } else if t.ends_with("/temporal.api.update.v1.Rejection") {
            upd::Rejection::decode(body.value.as_slice()).map_err(unmarshal)?;
            transition(
                "Rejection",
                &[UpdateValidationState::Sent, UpdateValidationState::Admitted],
            )?;
            states[i].1 = UpdateValidationState::ProvisionallyCompleted;
        } else if t.ends_with("/temporal.api.update.v1.Response") {
            let resp = upd::Response::decode(body.value.as_slice()).map_err(unmarshal)?;
            transition(
                "Response",
                &[
                    UpdateValidationState::ProvisionallyAccepted,
                    UpdateValidationState::Accepted,
                ],
            )?;
            let Some(meta) = &resp.meta else {
                return Err(not_set("Response", "meta"));
            };
            if meta.update_id.is_empty() {
                return Err(not_set("Response", "meta.update_id"));
            }
            if meta.update_id != id {
                return Err(format!("invalid *update.Response: meta.update_id != {id}"));
            }
            if resp.outcome.is_none() {
                return Err(not_set("Response", "outcome"));
            }
            states[i].1 = UpdateValidationState::ProvisionallyCompleted;
        } else {
            return Err(format!("Message type {t} not supported"));
        }
        Ok(())
    }

    fn update_mut(&mut self, id: &str) -> Option<&mut UpdateState> {
        self.state.updates.iter_mut().find(|u| u.update_id == id)
    }

    /// Applies one validated update message: an Acceptance or a Response writes its event (in
    /// command order when placed by a ProtocolMessage command), a Rejection writes nothing.
    pub(super) fn apply_message(&mut self, m: &Message) {
        let Some(body) = &m.body else { return };
        let id = m.protocol_instance_id.clone();
        let t = body.type_url.as_str();
        // After a close command only rejections (no event) still apply.
        if !self.is_running() && !t.ends_with("/temporal.api.update.v1.Rejection") {
            return;
        }
        if t.ends_with("/temporal.api.update.v1.Acceptance") {
            let Ok(acc) = upd::Acceptance::decode(body.value.as_slice()) else {
                return;
            };
            // Like Temporal, the event carries the request as the server sent it.
            let request = self
                .state
                .updates
                .iter()
                .find(|u| u.update_id == id)
                .and_then(|u| upd::Request::decode(u.request.as_slice()).ok())
                .or(acc.accepted_request);
            let ev = self.append(A::WorkflowExecutionUpdateAcceptedEventAttributes(
                WorkflowExecutionUpdateAcceptedEventAttributes {
                    protocol_instance_id: id.clone(),
                    accepted_request_message_id: format!("{id}/request"),
                    accepted_request_sequencing_event_id: acc.accepted_request_sequencing_event_id,
                    accepted_request: request,
                },
            ));
            if let Some(u) = self.update_mut(&id) {
                u.stage = Stage::Accepted as i32;
                u.accepted_event_id = ev;
            }
        } else if t.ends_with("/temporal.api.update.v1.Response") {
            let Ok(resp) = upd::Response::decode(body.value.as_slice()) else {
                return;
            };
            let accepted = self
                .state
                .updates
                .iter()
                .find(|u| u.update_id == id)
                .map(|u| u.accepted_event_id)
                .unwrap_or_default();
            self.append(A::WorkflowExecutionUpdateCompletedEventAttributes(
                WorkflowExecutionUpdateCompletedEventAttributes {
                    meta: resp.meta.clone(),
                    accepted_event_id: accepted,
                    outcome: resp.outcome.clone(),
                },
            ));
            let outcome = resp.outcome.unwrap_or_default().encode_to_vec();
            if let Some(u) = self.update_mut(&id) {
                u.stage = Stage::Completed as i32;
                u.outcome = outcome;
            }
        } else if t.ends_with("/temporal.api.update.v1.Rejection") {
            let Ok(rej) = upd::Rejection::decode(body.value.as_slice()) else {
                return;
            };
            let outcome = upd::Outcome {
                value: Some(upd::outcome::Value::Failure(
                    rej.failure.unwrap_or_default(),
                )),
            }
            .encode_to_vec();
            if let Some(u) = self.update_mut(&id) {
                u.stage = Stage::Completed as i32;
                u.outcome = outcome;
            }
        } else {
            return;
        }
        self.effects.push(Effect::UpdatesChanged);
    }

    /// Admits an update request (idempotent by update id) and makes sure a task carries it.
    pub fn admit_update(&mut self, request: &upd::Request) -> bool {
        let id = request
            .meta
            .as_ref()
            .map(|m| m.update_id.clone())
            .unwrap_or_default();
        if self.state.updates.iter().any(|u| u.update_id == id) {
            return false;
        }
        self.changed = true;
        self.state.updates.push(UpdateState {
            update_id: id,
            stage: Stage::Admitted as i32,
            request: request.encode_to_vec(),
            ..Default::default()
        });
        self.schedule_wft();
        true
    }
}
