//! Retry policies: server defaults, validation, and the retry/no-retry decision with its backoff,
//! shared by activities and workflow retries.

use std::time::{Duration, SystemTime};

use perdure_proto::api::common::v1::RetryPolicy;
use perdure_proto::api::enums::v1::{RetryState, TimeoutType};
use perdure_proto::api::failure::v1::Failure;
use perdure_proto::api::failure::v1::failure::FailureInfo;

use crate::clock::convert::{MAX_DURATION, dur, is_negative, pdur};

/// Fills the server defaults into an activity retry policy: 1 s initial interval, x2 backoff,
/// at most 100x the initial interval, unlimited attempts.
pub fn with_defaults(p: Option<RetryPolicy>) -> RetryPolicy {
    let mut p = p.unwrap_or_default();
    let initial = dur(&p.initial_interval);
    let initial = if initial.is_zero() {
        Duration::from_secs(1)
    } else {
        initial
    };
    p.initial_interval = Some(pdur(initial));
    if p.backoff_coefficient == 0.0 {
        p.backoff_coefficient = 2.0;
    }
    if dur(&p.maximum_interval).is_zero() {
        p.maximum_interval = Some(pdur(initial * 100));
    }
    p
}

/// Checks a policy as a client sent it, fills the defaults and checks the result, with
/// Temporal's messages.
pub fn normalize(p: Option<RetryPolicy>) -> Result<RetryPolicy, String> {
    if let Some(p) = &p {
        if is_negative(&p.initial_interval) {
            return Err("invalid InitialInterval set on retry policy: negative duration".into());
        }
        if is_negative(&p.maximum_interval) {
            return Err("invalid MaximumInterval set on retry policy: negative duration".into());
        }
        // The default maximum is 100x the initial interval in Go's signed nanoseconds; Temporal
        // refuses an initial interval for which that overflows.
        if dur(&p.maximum_interval).is_zero() && dur(&p.initial_interval) > MAX_DURATION / 100 {
            return Err("invalid MaximumInterval set on retry policy: negative duration".into());
        }
    }
    let p = with_defaults(p);
    validate(&p)?;
    Ok(p)
}

/// Checks a policy that already went through [`with_defaults`]; returns a message on error.
pub fn validate(p: &RetryPolicy) -> Result<(), String> {
    if p.backoff_coefficient.is_nan() || p.backoff_coefficient < 1.0 {
        return Err("BackoffCoefficient cannot be less than 1.".into());
    }
    if dur(&p.maximum_interval) < dur(&p.initial_interval) {
        return Err("MaximumInterval cannot be less than InitialInterval on retry policy.".into());
    }
    if p.maximum_attempts < 0 {
        return Err("MaximumAttempts cannot be negative on retry policy.".into());
    }
    Ok(())
}

/// Whether a failure may be retried under `p`.
pub fn is_retryable(p: &RetryPolicy, failure: Option<&Failure>) -> bool {
    let Some(f) = failure else { return true };
    match &f.failure_info {
        Some(FailureInfo::ApplicationFailureInfo(a)) => {
            !(a.non_retryable || p.non_retryable_error_types.contains(&a.r#type))
        }
        Some(FailureInfo::CanceledFailureInfo(_)) | Some(FailureInfo::TerminatedFailureInfo(_)) => {
            false
        }
        Some(FailureInfo::TimeoutFailureInfo(t)) => {
            let tt = TimeoutType::try_from(t.timeout_type).unwrap_or(TimeoutType::Unspecified);
            match tt {
                TimeoutType::StartToClose | TimeoutType::Heartbeat => {
                    let name = format!("TemporalTimeout:{}", timeout_name(tt));
                    !p.non_retryable_error_types.contains(&name)
                }
                _ => false,
            }
        }
        Some(FailureInfo::ServerFailureInfo(s)) => !s.non_retryable,
        _ => true,
    }
}

fn timeout_name(t: TimeoutType) -> &'static str {
    match t {
        TimeoutType::StartToClose => "StartToClose",
        TimeoutType::ScheduleToStart => "ScheduleToStart",
        TimeoutType::ScheduleToClose => "ScheduleToClose",
        TimeoutType::Heartbeat => "Heartbeat",
        TimeoutType::Unspecified => "Unspecified",
    }
}

/// The next retry delay for a failed `attempt` (1-based), or why there is none.
pub fn next_delay(
    p: &RetryPolicy,
    attempt: i32,
    failure: Option<&Failure>,
    now: SystemTime,
    expiration: Option<SystemTime>,
) -> Result<Duration, RetryState> {
    if !is_retryable(p, failure) {
        return Err(RetryState::NonRetryableFailure);
    }
    if p.maximum_attempts > 0 && attempt >= p.maximum_attempts {
        return Err(RetryState::MaximumAttemptsReached);
    }
    let explicit = match failure.and_then(|f| f.failure_info.as_ref()) {
        Some(FailureInfo::ApplicationFailureInfo(a)) => {
            a.next_retry_delay.as_ref().map(|d| dur(&Some(*d)))
        }
        _ => None,
    };
    let delay = explicit.unwrap_or_else(|| {
        let initial = dur(&p.initial_interval).as_secs_f64();
        let max = dur(&p.maximum_interval).as_secs_f64();
        let coeff = if p.backoff_coefficient < 1.0 {
            1.0
        } else {
            p.backoff_coefficient
        };
        let raw = initial * coeff.powi((attempt - 1).clamp(0, 1000));
        let secs = if max > 0.0 { raw.min(max) } else { raw };
        if secs.is_nan() {
            return MAX_DURATION;
        }
        Duration::from_secs_f64(secs.clamp(0.0, MAX_DURATION.as_secs_f64())).min(MAX_DURATION)
    });
    if let Some(exp) = expiration
        && now.checked_add(delay).is_none_or(|at| at >= exp)
    {
        return Err(RetryState::Timeout);
    }
    Ok(delay)
}

#[cfg(test)]
mod tests {
    use super::*;
    use perdure_proto::api::failure::v1::ApplicationFailureInfo;

    fn app(non_retryable: bool, ty: &str) -> Failure {
        Failure {
            message: "boom".into(),
            failure_info: Some(FailureInfo::ApplicationFailureInfo(
                ApplicationFailureInfo {
                    r#type: ty.into(),
                    non_retryable,
                    ..Default::default()
                },
            )),
            ..Default::default()
        }
    }

    #[test]
    fn defaults_are_filled() {
        let p = with_defaults(Some(RetryPolicy {
            initial_interval: Some(pdur(Duration::from_millis(100))),
            ..Default::default()
        }));
        assert_eq!(dur(&p.maximum_interval), Duration::from_secs(10));
        assert_eq!(p.backoff_coefficient, 2.0);
        let p = with_defaults(None);
        assert_eq!(dur(&p.initial_interval), Duration::from_secs(1));
        assert_eq!(dur(&p.maximum_interval), Duration::from_secs(100));
        assert!(validate(&p).is_ok());
    }

    #[test]
    fn client_policies_are_checked_like_temporal() {
        let secs = |s: i64| {
            Some(perdure_proto::prost_types::Duration {
                seconds: s,
                nanos: 0,
            })
        };
        let neg = RetryPolicy {
            initial_interval: secs(-1),
            ..Default::default()
        };
        assert_eq!(
            normalize(Some(neg)).unwrap_err(),
            "invalid InitialInterval set on retry policy: negative duration"
        );
        let neg_max = RetryPolicy {
            maximum_interval: secs(-1),
            ..Default::default()
        };
        assert!(
            normalize(Some(neg_max))
                .unwrap_err()
                .contains("MaximumInterval")
        );
        let huge = RetryPolicy {
            initial_interval: secs(i64::MAX),
            ..Default::default()
        };
        assert_eq!(
            normalize(Some(huge)).unwrap_err(),
            "invalid MaximumInterval set on retry policy: negative duration"
        );
        // A huge initial interval with a huge maximum is accepted and never overflows.
        let both = RetryPolicy {
            initial_interval: secs(i64::MAX),
            maximum_interval: secs(i64::MAX),
            ..Default::default()
        };
        let p = normalize(Some(both)).unwrap();
        let now = SystemTime::now();
        let d = next_delay(&p, 60, None, now, Some(now + Duration::from_secs(1))).unwrap_err();
        assert_eq!(d, RetryState::Timeout);
        assert!(next_delay(&p, 60, None, now, None).unwrap() <= MAX_DURATION);
        assert_eq!(
            normalize(None).unwrap().initial_interval,
            secs(1),
            "defaults are filled"
        );
    }

    #[test]
    fn backoff_grows_and_caps() {
        let p = with_defaults(None);
        let now = SystemTime::now();
        let d: Vec<_> = (1..=9)
            .map(|a| next_delay(&p, a, None, now, None).unwrap().as_secs())
            .collect();
        assert_eq!(d, vec![1, 2, 4, 8, 16, 32, 64, 100, 100]);
    }

    #[test]
    fn stops_on_non_retryable_max_attempts_and_expiration() {
        let mut p = with_defaults(None);
        let now = SystemTime::now();
        assert_eq!(
            next_delay(&p, 1, Some(&app(true, "X")), now, None),
            Err(RetryState::NonRetryableFailure)
        );
        p.non_retryable_error_types = vec!["Bad".into()];
        assert_eq!(
            next_delay(&p, 1, Some(&app(false, "Bad")), now, None),
            Err(RetryState::NonRetryableFailure)
        );
        p.maximum_attempts = 2;
        assert!(next_delay(&p, 1, None, now, None).is_ok());
        assert_eq!(
            next_delay(&p, 2, None, now, None),
            Err(RetryState::MaximumAttemptsReached)
        );
        p.maximum_attempts = 0;
        assert_eq!(
            next_delay(&p, 1, None, now, Some(now + Duration::from_millis(500))),
            Err(RetryState::Timeout)
        );
    }
}
