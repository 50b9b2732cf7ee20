//! The workflow task: buffered events, scheduling (sticky or normal, transient retries), start,
//! failure, timeouts and the completion that applies a worker's commands.

use std::time::Duration;

use perdure_proto::api::enums::v1::{
    IndexedValueType, TaskQueueKind, TimeoutType, UpdateWorkflowExecutionLifecycleStage as Stage,
    WorkflowTaskFailedCause as Cause,
};
use perdure_proto::api::failure::v1::Failure;
use perdure_proto::api::history::v1::history_event::Attributes as A;
use perdure_proto::api::history::v1::*;
use perdure_proto::api::protocol::v1::Message;
use perdure_proto::api::taskqueue::v1::TaskQueue;
use perdure_proto::api::workflowservice::v1::RespondWorkflowTaskCompletedRequest;
use prost::Message as _;

use crate::clock::convert::{dur, ts};
use crate::events::{PREVIOUS_EVENT, assign_ids};
use crate::state::*;

use super::commands::{PAYLOAD_TOO_BIG, command_sequence_error, is_closing, placed_message_ids};
use super::{Effect, Rejected, StartedTask, TimerKind, Tx, cause_name, normal_queue};

impl Tx<'_> {
    /// Persists an event, or buffers it while a workflow task is started. Returns its id, or
    /// [`PREVIOUS_EVENT`] when buffered.
    pub fn add(&mut self, a: A) -> i64 {
        if self.wft_started() {
            let e = self.make(a);
            self.state.buffered_events.push(e);
            self.changed = true;
            PREVIOUS_EVENT
        } else {
            self.append(a)
        }
    }

    pub fn wft_started(&self) -> bool {
        self.state
            .wft
            .as_ref()
            .is_some_and(|w| w.started_event_id != 0)
    }

    /// Writes the buffered events after everything else; returns how many there were.
    pub fn flush_buffer(&mut self) -> usize {
        let mut buf = std::mem::take(&mut self.state.buffered_events);
        if buf.is_empty() {
            return 0;
        }
        let (next, child_started) = assign_ids(&mut buf, self.state.next_event_id);
        self.state.next_event_id = next;
        for (init, sid) in child_started {
            if let Some(c) = self
                .state
                .children
                .iter_mut()
                .find(|c| c.initiated_event_id == init)
            {
                c.started_event_id = sid;
            }
        }
        for e in &mut buf {
            e.task_id = e.event_id;
            self.state.history_size_bytes += e.encoded_len() as i64;
        }
        let n = buf.len();
        self.events.extend(buf);
        n
    }

    fn next_seq(&self) -> i64 {
        self.state.state_transition_count + self.state.next_event_id * 1_000_000
    }

    /// Schedules a workflow task (attempt 1, persisted) unless one is outstanding.
    pub fn schedule_wft(&mut self) {
        if !self.is_running()
            || self.state.wft.is_some()
            || self.state.first_wft_backoff_until.is_some()
        {
            return;
        }
        let sticky = !self.state.sticky_queue.is_empty();
        let queue = if sticky {
            TaskQueue {
                name: self.state.sticky_queue.clone(),
                kind: TaskQueueKind::Sticky as i32,
                normal_name: self.state.task_queue.clone(),
            }
        } else {
            normal_queue(&self.state.task_queue)
        };
        let scheduled = self.append(A::WorkflowTaskScheduledEventAttributes(
            WorkflowTaskScheduledEventAttributes {
                task_queue: Some(queue.clone()),
                start_to_close_timeout: self.state.task_timeout,
                attempt: 1,
            },
        ));
        let seq = self.next_seq();
        self.state.wft = Some(WorkflowTaskState {
            scheduled_event_id: scheduled,
            attempt: 1,
            scheduled_time: Some(ts(self.now)),
            original_scheduled_time: Some(ts(self.now)),
            task_queue: queue.name,
            sticky,
            dispatch_seq: seq,
            ..Default::default()
        });
        self.effects.push(Effect::DispatchWorkflowTask);
        if sticky {
            let to = dur(&self.state.sticky_schedule_to_start);
            let to = if to.is_zero() {
                Duration::from_secs(5)
            } else {
                to
            };
            self.effects.push(Effect::Timer {
                at: self.now + to,
                kind: TimerKind::WorkflowTask {
                    dispatch_seq: seq,
                    timeout: TimeoutType::ScheduleToStart as i32,
                },
            });
        }
    }

    /// Schedules a retry of a failed workflow task. Attempt 1 is persisted on the normal queue;
    /// later attempts are transient.
    fn schedule_wft_attempt(&mut self, attempt: i32) {
        self.changed = true;
        self.state.sticky_queue.clear();
        if attempt <= 1 {
            self.schedule_wft();
            return;
        }
        if !self.is_running() {
            return;
        }
        let seq = self.next_seq();
        self.state.wft = Some(WorkflowTaskState {
            attempt,
            scheduled_time: Some(ts(self.now)),
            original_scheduled_time: Some(ts(self.now)),
            task_queue: self.state.task_queue.clone(),
            transient: true,
            dispatch_seq: seq,
            ..Default::default()
        });
        self.effects.push(Effect::DispatchWorkflowTask);
    }

    /// Marks the scheduled workflow task started by a poller.
    pub fn start_wft(&mut self, request_id: &str, identity: &str) -> StartedTask {
        let now = self.now;
        let next = self.state.next_event_id;
        let history_size = self.state.history_size_bytes;
        let suggest_continue_as_new = self.limits.suggest_continue_as_new(next - 1, history_size);
        let task_timeout = dur(&self.state.task_timeout);
        let w = self
            .state
            .wft
            .clone()
            .expect("start_wft without a scheduled task");
        let started_attrs = |scheduled: i64| {
            A::WorkflowTaskStartedEventAttributes(WorkflowTaskStartedEventAttributes {
                scheduled_event_id: scheduled,
                identity: identity.to_string(),
                request_id: request_id.to_string(),
                history_size_bytes: history_size,
                suggest_continue_as_new,
                ..Default::default()
            })
        };
        let (scheduled, started, transient_events) = if w.transient {
            let mut s = self.make(A::WorkflowTaskScheduledEventAttributes(
                WorkflowTaskScheduledEventAttributes {
                    task_queue: Some(normal_queue(&self.state.task_queue)),
                    start_to_close_timeout: self.state.task_timeout,
                    attempt: w.attempt,
                },
            ));
            s.event_id = next;
            s.task_id = next;
            s.event_time = w.scheduled_time;
            let mut st = self.make(started_attrs(next));
            st.event_id = next + 1;
            st.task_id = next + 1;
            (next, next + 1, vec![s, st])
        } else {
            let id = self.append(started_attrs(w.scheduled_event_id));
            (w.scheduled_event_id, id, vec![])
        };
        // Update requests go with the task, sequenced right before its started event.
        let mut messages = Vec::new();
        let mut delivered = Vec::new();
        for u in &self.state.updates {
            if u.stage == Stage::Admitted as i32 {
                messages.push(Message {
                    id: format!("{}/request", u.update_id),
                    protocol_instance_id: u.update_id.clone(),
                    body: Some(perdure_proto::prost_types::Any {
                        type_url: "type.googleapis.com/temporal.api.update.v1.Request".into(),
                        value: u.request.clone(),
                    }),
                    sequencing_id: Some(
                        perdure_proto::api::protocol::v1::message::SequencingId::EventId(
                            started - 1,
                        ),
                    ),
                });
                delivered.push(u.update_id.clone());
            }
        }
        let seq = w.dispatch_seq;
        self.changed = true;
        let wm = self.state.wft.as_mut().unwrap();
        wm.scheduled_event_id = scheduled;
        wm.started_event_id = started;
        wm.started_time = Some(ts(now));
        wm.request_id = request_id.to_string();
        wm.identity = identity.to_string();
        wm.delivered_updates = delivered;
        self.effects.push(Effect::Timer {
            at: now + task_timeout,
            kind: TimerKind::WorkflowTask {
                dispatch_seq: seq,
                timeout: TimeoutType::StartToClose as i32,
            },
        });
        StartedTask {
            scheduled_event_id: scheduled,
            started_event_id: started,
            attempt: w.attempt,
            transient_events,
            messages,
        }
    }

    /// Persists the Scheduled/Started events of a transient task that is being completed.
    fn persist_transient(&mut self) {
        let Some(w) = self.state.wft.clone() else {
            return;
        };
        if !w.transient {
            return;
        }
        let scheduled = self.append(A::WorkflowTaskScheduledEventAttributes(
            WorkflowTaskScheduledEventAttributes {
                task_queue: Some(normal_queue(&self.state.task_queue)),
                start_to_close_timeout: self.state.task_timeout,
                attempt: w.attempt,
            },
        ));
        if let Some(e) = self.events.last_mut() {
            e.event_time = w.scheduled_time;
        }
        let started = self.append(A::WorkflowTaskStartedEventAttributes(
            WorkflowTaskStartedEventAttributes {
                scheduled_event_id: scheduled,
                identity: w.identity.clone(),
                request_id: w.request_id.clone(),
                history_size_bytes: self.state.history_size_bytes,
                ..Default::default()
            },
        ));
        if let Some(e) = self.events.last_mut() {
            e.event_time = w.started_time;
        }
        debug_assert_eq!(
            (scheduled, started),
            (w.scheduled_event_id, w.started_event_id)
        );
    }

    /// Fails the started workflow task and schedules its retry.
    pub fn fail_wft(&mut self, cause: Cause, failure: Option<Failure>, identity: &str) {
        let Some(w) = self.state.wft.take() else {
            return;
        };
        if !w.transient {
            self.append(A::WorkflowTaskFailedEventAttributes(
                WorkflowTaskFailedEventAttributes {
                    scheduled_event_id: w.scheduled_event_id,
                    started_event_id: w.started_event_id,
                    cause: cause as i32,
                    failure,
                    identity: identity.to_string(),
                    ..Default::default()
                },
            ));
        }
        self.flush_buffer();
        let attempt = if cause == Cause::UnhandledCommand || w.sticky {
            1
        } else {
            w.attempt + 1
        };
        self.schedule_wft_attempt(attempt);
    }

    /// A workflow task timer fired (`dispatch_seq` must still be current).
    pub fn wft_timeout(&mut self, dispatch_seq: i64, timeout: TimeoutType) -> bool {
        let Some(w) = self.state.wft.clone() else {
            return false;
        };
        if w.dispatch_seq != dispatch_seq {
            return false;
        }
        match timeout {
            TimeoutType::ScheduleToStart if w.started_event_id == 0 && w.sticky => {
                self.state.wft = None;
                self.append(A::WorkflowTaskTimedOutEventAttributes(
                    WorkflowTaskTimedOutEventAttributes {
                        scheduled_event_id: w.scheduled_event_id,
                        started_event_id: 0,
                        timeout_type: TimeoutType::ScheduleToStart as i32,
                    },
                ));
                self.state.sticky_queue.clear();
                self.schedule_wft();
                true
            }
            TimeoutType::StartToClose if w.started_event_id != 0 => {
                self.state.wft = None;
                if !w.transient {
                    self.append(A::WorkflowTaskTimedOutEventAttributes(
                        WorkflowTaskTimedOutEventAttributes {
                            scheduled_event_id: w.scheduled_event_id,
                            started_event_id: w.started_event_id,
                            timeout_type: TimeoutType::StartToClose as i32,
                        },
                    ));
                }
                self.flush_buffer();
                let attempt = if w.sticky { 1 } else { w.attempt + 1 };
                self.schedule_wft_attempt(attempt);
                true
            }
            _ => false,
        }
    }

    /// Moves a sticky, not-yet-started workflow task to the normal queue (its sticky worker went
    /// away).
    pub fn unstick(&mut self) -> bool {
        self.state.sticky_queue.clear();
        match self.state.wft.clone() {
            Some(w) if w.sticky && w.started_event_id == 0 => {
                self.wft_timeout(w.dispatch_seq, TimeoutType::ScheduleToStart)
            }
            _ => false,
        }
    }

    /// Applies a `RespondWorkflowTaskCompleted`. `sa_type` resolves registered search
    /// attributes. On `Err`, the task was failed and the state must still be committed.
    pub fn complete_wft(
        &mut self,
        req: &RespondWorkflowTaskCompletedRequest,
        sa_type: &dyn Fn(&str) -> Option<IndexedValueType>,
    ) -> Result<(), Rejected> {
        let w = self
            .state
            .wft
            .clone()
            .expect("complete_wft without a started task");
        if let Some(msg) = command_sequence_error(&req.commands) {
            return Err(Rejected(msg));
        }
        let (count, size) = (self.state.next_event_id - 1, self.state.history_size_bytes);
        if let Some(reason) = self.limits.history_breach(count, size) {
            // The history outgrew its limits: the run ends here, as Temporal ends it.
            self.fail_wft(Cause::ForceCloseCommand, None, &req.identity);
            self.terminate(reason, None, "history-service");
            return Err(Rejected(reason.into()));
        }
        if self.limits.history_warning(count, size) {
            tracing::warn!(
                workflow_id = %self.state.workflow_id,
                run_id = %self.state.run_id,
                events = count,
                bytes = size,
                "the history is approaching its size or count limit; consider continue-as-new"
            );
        }
        let closing = req.commands.iter().any(is_closing);
        let delivered_pending = self.state.updates.iter().any(|u| {
            u.stage == Stage::Admitted as i32
                && !w.delivered_updates.contains(&u.update_id)
                && !req
                    .messages
                    .iter()
                    .any(|m| m.protocol_instance_id == u.update_id)
        });
        if closing && (!self.state.buffered_events.is_empty() || delivered_pending) {
            self.fail_wft(
                Cause::UnhandledCommand,
                Some(Failure {
                    message: "Workflow task completed with unhandled new events.".into(),
                    source: "Server".into(),
                    ..Default::default()
                }),
                &req.identity,
            );
            return Err(Rejected("UnhandledCommand".into()));
        }
        let mut commands = req.commands.clone();
        if let Err((cause, msg)) =
            self.validate_commands(&mut commands, sa_type, &req.messages, &w.delivered_updates)
        {
            let full = format!("{}: {}", cause_name(cause), msg);
            if cause == Cause::BadUpdateWorkflowExecutionMessage {
                self.fail_wft_bad_update_message(&w, &full, &req.identity);
            } else {
                self.fail_wft(
                    cause,
                    Some(Failure {
                        message: msg.clone(),
                        source: "Server".into(),
                        ..Default::default()
                    }),
                    &req.identity,
                );
                if cause == PAYLOAD_TOO_BIG && msg.ends_with("exceeds size limit.") {
                    // A payload over the limit would fail every retry of the task: Temporal
                    // terminates the run instead.
                    self.terminate(&full, None, "history-service");
                }
            }
            return Err(Rejected(full));
        }
        self.persist_transient();
        let (versioning_behavior, worker_deployment_name, deployment_version) =
            self.record_worker_version(req);
        let (binary_checksum, worker_version) = super::versioning::build_stamp(req);
        let completed = self.append(A::WorkflowTaskCompletedEventAttributes(
            WorkflowTaskCompletedEventAttributes {
                scheduled_event_id: w.scheduled_event_id,
                started_event_id: w.started_event_id,
                identity: req.identity.clone(),
                binary_checksum,
                worker_version,
                sdk_metadata: req.sdk_metadata.clone(),
                metering_metadata: req.metering_metadata,
                versioning_behavior,
                worker_deployment_name,
                deployment_version,
                ..Default::default()
            },
        ));
        self.state.wft = None;
        self.state.last_completed_wft_started_id = w.started_event_id;
        let mut need_wft = req.force_create_new_workflow_task;
        let used_messages = placed_message_ids(&commands);
        for c in commands {
            if !self.is_running() {
                break;
            }
            need_wft |= self.apply_command(c, completed, &req.messages);
        }
        // Messages not placed by a command (rejections, which have no event, and acceptances or
        // responses of older SDKs) are applied after the commands, as Temporal does.
        for m in &req.messages {
            if !used_messages.contains(&m.id) {
                self.apply_message(m);
            }
        }
        let flushed = self.flush_buffer();
        if !self.is_running() {
            return Ok(());
        }
        if let Some(sa) = &req.sticky_attributes {
            match sa.worker_task_queue.as_ref() {
                Some(q) if !q.name.is_empty() => {
                    self.state.sticky_queue = q.name.clone();
                    self.state.sticky_schedule_to_start = sa.schedule_to_start_timeout;
                }
                _ => self.state.sticky_queue.clear(),
            }
        } else {
            self.state.sticky_queue.clear();
        }
        let admitted = self
            .state
            .updates
            .iter()
            .any(|u| u.stage == Stage::Admitted as i32);
        if flushed > 0 || need_wft || admitted {
            self.schedule_wft();
        }
        Ok(())
    }
}
