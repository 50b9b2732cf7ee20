//! Size and count limits on what clients and workers send, with Temporal's dev-server defaults
//! and messages: payload blobs, memos, search attributes, ids, failures, history growth and
//! pending work per run.

use std::time::Duration;

use perdure_proto::api::common::v1::{Memo, Payloads, SearchAttributes};
use perdure_proto::api::failure::v1::failure::FailureInfo;
use perdure_proto::api::failure::v1::{ApplicationFailureInfo, Failure, ServerFailureInfo};
use prost::Message;

/// The message of a failure replaced because it was too large.
pub const FAILURE_EXCEEDS_LIMIT: &str = "Failure exceeds size limit.";
/// The failure written for an activity result over the blob limit.
pub const COMPLETE_RESULT_EXCEEDS_LIMIT: &str = "Complete result exceeds size limit.";
/// The failure written for heartbeat details over the blob limit.
pub const HEARTBEAT_DETAILS_EXCEED_LIMIT: &str = "Heartbeat details exceed size limit.";
/// The termination reason when a history grows past its size limit.
pub const HISTORY_SIZE_EXCEEDS_LIMIT: &str = "Workflow history size exceeds limit.";
/// The termination reason when a history grows past its event count limit.
pub const HISTORY_COUNT_EXCEEDS_LIMIT: &str = "Workflow history count exceeds limit.";
/// Longest run/execution timeout and start delay kept: 100 years, as Temporal caps them.
pub const MAX_WORKFLOW_TIMEOUT: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
/// How many causes a cut-down failure keeps.
const MAX_FAILURE_DEPTH: usize = 20;

/// Every limit, configurable; [`Limits::default`] is Temporal's dev server.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest payload set (data and metadata, encoded) in one request field.
    pub blob_size: usize,
    /// Largest memo (encoded).
    pub memo_size: usize,
    /// Longest workflow id, type name, task queue, request id, activity id, timer id, signal name.
    pub id_length: usize,
    /// Most search attributes on one execution.
    pub search_attribute_keys: usize,
    /// Largest single search attribute value.
    pub search_attribute_value_size: usize,
    /// Largest total of search attribute values.
    pub search_attributes_total_size: usize,
    /// Largest failure kept as sent; larger ones are cut down (see [`Limits::fit_failure`]).
    pub failure_size: usize,
    /// History event count from which workflow tasks suggest continue-as-new.
    pub history_count_suggest_continue_as_new: usize,
    /// History size in bytes from which workflow tasks suggest continue-as-new.
    pub history_size_suggest_continue_as_new: usize,
    /// History event count at which a warning is logged.
    pub history_count_warn: usize,
    /// History event count at which the run is terminated.
    pub history_count: usize,
    /// History size in bytes at which a warning is logged.
    pub history_size_warn: usize,
    /// History size in bytes at which the run is terminated.
    pub history_size: usize,
    /// Most activities, child workflows, outgoing signals and outgoing cancellations pending at
    /// once in one run.
    pub pending_activities: usize,
    pub pending_children: usize,
    pub pending_signals: usize,
    pub pending_cancels: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            blob_size: 2 * 1024 * 1024,
            memo_size: 2 * 1024 * 1024,
            id_length: 1000,
            search_attribute_keys: 100,
            search_attribute_value_size: 2 * 1024,
            search_attributes_total_size: 40 * 1024,
            failure_size: 2 * 1024 * 1024,
            history_count_suggest_continue_as_new: 4 * 1024,
            history_size_suggest_continue_as_new: 4 * 1024 * 1024,
            history_count_warn: 10 * 1024,
            history_count: 50 * 1024,
            history_size_warn: 10 * 1024 * 1024,
            history_size: 50 * 1024 * 1024,
            pending_activities: 2000,
            pending_children: 2000,
            pending_signals: 2000,
            pending_cancels: 2000,
        }
    }
}

impl Limits {
    /// Whether a payload set (data and metadata) fits the blob limit.
    pub fn blob_fits(&self, p: Option<&Payloads>) -> bool {
        p.is_none_or(|p| p.encoded_len() <= self.blob_size)
    }

    /// Checks a payload set against the blob limit, with Temporal's message.
    pub fn check_blob(&self, p: Option<&Payloads>) -> Result<(), String> {
        if self.blob_fits(p) {
            Ok(())
        } else {
            Err("Blob data size exceeds limit.".into())
        }
    }

    /// Why a history of `count` events and `size` bytes must end the run, if it must.
    pub fn history_breach(&self, count: i64, size: i64) -> Option<&'static str> {
        if count > self.history_count as i64 {
            Some(HISTORY_COUNT_EXCEEDS_LIMIT)
        } else if size > self.history_size as i64 {
            Some(HISTORY_SIZE_EXCEEDS_LIMIT)
        } else {
            None
        }
    }

    /// Whether a history of `count` events and `size` bytes is past the warning thresholds.
    pub fn history_warning(&self, count: i64, size: i64) -> bool {
        count > self.history_count_warn as i64 || size > self.history_size_warn as i64
    }

    /// Whether workflow tasks on such a history suggest continue-as-new.
    pub fn suggest_continue_as_new(&self, count: i64, size: i64) -> bool {
        count >= self.history_count_suggest_continue_as_new as i64
            || size >= self.history_size_suggest_continue_as_new as i64
    }

    /// Checks a memo against its limit.
    pub fn check_memo(&self, m: Option<&Memo>) -> Result<(), String> {
        match m {
            Some(m) if m.encoded_len() > self.memo_size => Err("Memo size exceeds limit.".into()),
            _ => Ok(()),
        }
    }

    /// Checks an id-like field (`what` names it in the message, e.g. `WorkflowType`).
    pub fn check_id(&self, what: &str, value: &str) -> Result<(), String> {
        if value.len() > self.id_length {
            Err(format!("{what} length exceeds limit."))
        } else {
            Ok(())
        }
    }

    /// Checks search attributes: no system attribute a client may not set, and the count and
    /// size limits.
    pub fn check_search_attributes(&self, sa: Option<&SearchAttributes>) -> Result<(), String> {
        let Some(sa) = sa else { return Ok(()) };
        for name in sa.indexed_fields.keys() {
            let settable = matches!(
                name.as_str(),
                "TemporalChangeVersion"
                    | "BinaryChecksums"
                    | "BuildIds"
                    | "TemporalScheduledStartTime"
                    | "TemporalScheduledById"
            );
            if !settable
                && perdure_query::system_attributes()
                    .iter()
                    .any(|(n, _)| n == name)
            {
                return Err(format!("{name} attribute can't be set in SearchAttributes"));
            }
        }
        let n = sa.indexed_fields.len();
        if n > self.search_attribute_keys {
            return Err(format!(
                "number of search attributes {n} exceeds limit {}",
                self.search_attribute_keys
            ));
        }
        let mut total = 0;
        for (name, v) in &sa.indexed_fields {
            let size = v.data.len();
            if size > self.search_attribute_value_size {
                return Err(format!(
                    "search attribute {name} value size {size} exceeds size limit {}",
                    self.search_attribute_value_size
                ));
            }
            total += size + name.len();
        }
        if total > self.search_attributes_total_size {
            return Err(format!(
                "total size of search attributes {total} exceeds size limit {}",
                self.search_attributes_total_size
            ));
        }
        Ok(())
    }

    /// A failure as it may be stored: itself when its encoded size fits the limit, otherwise
    /// the server failure `Failure exceeds size limit.` with the failure cut down to a quarter of
    /// the limit as its cause (message, then stack trace, then causes; details dropped), as
    /// Temporal does.
    pub fn fit_failure(&self, f: Failure) -> Failure {
        if f.encoded_len() <= self.failure_size {
            return f;
        }
        let mut budget = self.failure_size / 4;
        Failure {
            message: FAILURE_EXCEEDS_LIMIT.into(),
            failure_info: Some(FailureInfo::ServerFailureInfo(ServerFailureInfo {
                non_retryable: false,
            })),
            cause: cut_failure(&f, &mut budget, 0).map(Box::new),
            ..Default::default()
        }
    }
}

/// `f` with its text cut to `budget` bytes, keeping what decides retries.
fn cut_failure(f: &Failure, budget: &mut usize, depth: usize) -> Option<Failure> {
    if depth >= MAX_FAILURE_DEPTH || *budget == 0 {
        return None;
    }
    let failure_info = match &f.failure_info {
        Some(FailureInfo::ApplicationFailureInfo(a)) => Some(FailureInfo::ApplicationFailureInfo(
            ApplicationFailureInfo {
                r#type: a.r#type.clone(),
                non_retryable: a.non_retryable,
                ..Default::default()
            },
        )),
        Some(FailureInfo::ServerFailureInfo(s)) => Some(FailureInfo::ServerFailureInfo(*s)),
        _ => None,
    };
    let mut out = Failure {
        source: f.source.clone(),
        failure_info,
        ..Default::default()
    };
    out.message = cut(&f.message, budget);
    if *budget > 0 {
        out.stack_trace = cut(&f.stack_trace, budget);
    }
    if let Some(c) = &f.cause {
        out.cause = cut_failure(c, budget, depth + 1).map(Box::new);
    }
    Some(out)
}

/// The longest prefix of `s` within `budget` bytes (on a character boundary); spends it.
fn cut(s: &str, budget: &mut usize) -> String {
    let mut end = s.len().min(*budget);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    *budget -= end;
    s[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use perdure_proto::api::common::v1::Payload;

    #[test]
    fn blob_size_counts_metadata() {
        let l = Limits::default();
        let p = Payloads {
            payloads: vec![Payload {
                metadata: [("encoding".to_string(), vec![b'x'; 3 << 20])].into(),
                data: b"1".to_vec(),
                ..Default::default()
            }],
        };
        assert_eq!(
            l.check_blob(Some(&p)).unwrap_err(),
            "Blob data size exceeds limit."
        );
        assert!(l.check_blob(None).is_ok());
    }

    #[test]
    fn big_failures_are_cut_down_within_the_limit() {
        let l = Limits::default();
        let f = Failure {
            message: "é".repeat(10 << 20),
            stack_trace: "s".repeat(1 << 20),
            failure_info: Some(FailureInfo::ApplicationFailureInfo(
                ApplicationFailureInfo {
                    r#type: "Boom".into(),
                    non_retryable: true,
                    details: Some(Payloads {
                        payloads: vec![Payload::default()],
                    }),
                    ..Default::default()
                },
            )),
            ..Default::default()
        };
        let out = l.fit_failure(f);
        assert_eq!(out.message, FAILURE_EXCEEDS_LIMIT);
        assert!(out.encoded_len() <= l.failure_size);
        let cause = out.cause.unwrap();
        assert!(cause.message.len() <= l.failure_size / 4 && !cause.message.is_empty());
        assert!(cause.stack_trace.is_empty());
        match cause.failure_info {
            Some(FailureInfo::ApplicationFailureInfo(a)) => {
                assert_eq!(a.r#type, "Boom");
                assert!(a.non_retryable);
                assert!(a.details.is_none());
            }
            other => panic!("{other:?}"),
        }
        let small = Failure {
            message: "fine".into(),
            ..Default::default()
        };
        assert_eq!(l.fit_failure(small.clone()), small);
    }

    #[test]
    fn system_search_attributes_cannot_be_set() {
        let l = Limits::default();
        let sa = |name: &str| SearchAttributes {
            indexed_fields: [(name.to_string(), Default::default())].into(),
        };
        assert_eq!(
            l.check_search_attributes(Some(&sa("WorkflowId")))
                .unwrap_err(),
            "WorkflowId attribute can't be set in SearchAttributes"
        );
        assert!(
            l.check_search_attributes(Some(&sa("ExecutionStatus")))
                .is_err()
        );
        assert!(
            l.check_search_attributes(Some(&sa("TemporalChangeVersion")))
                .is_ok()
        );
        assert!(l.check_search_attributes(Some(&sa("CustomField"))).is_ok());
    }
}
