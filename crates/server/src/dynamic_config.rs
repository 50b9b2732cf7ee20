//! `KEY=VALUE` settings named as in Temporal's dynamic config (`limit.blobSize.error=4194304`),
//! as `temporal server start-dev --dynamic-config-value` takes them, applied to the engine's
//! [`Limits`]. Feature switches that Temporal needs and Perdure does not (its features are always
//! on) are accepted; keys Perdure does not know are reported, not refused, so a test harness can
//! start either server with the same command line.

use perdure_core::limits::Limits;

/// A setting that cannot be applied.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SettingError {
    #[error("expected KEY=VALUE, got {0:?}")]
    Syntax(String),
    #[error("{key} needs a non-negative whole number, got {value:?}")]
    BadValue { key: String, value: String },
    #[error("{key} is a switch: it takes true or false, got {value:?}")]
    BadSwitch { key: String, value: String },
}

/// What a well-formed setting did.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// A limit was set.
    Applied,
    /// A feature switch of Temporal's: Perdure has the feature on whatever the value.
    AlwaysOn,
    /// A switch that turns a Perdure feature off, which Perdure cannot do: it stays on.
    CannotDisable,
    /// A key Perdure does not know: nothing changed (the caller warns).
    Unknown,
}

/// Every limit key Perdure understands.
pub const KEYS: &[&str] = &[
    "limit.blobSize.error",
    "limit.memoSize.error",
    "limit.maxIDLength",
    "frontend.searchAttributesNumberOfKeysLimit",
    "frontend.searchAttributesSizeOfValueLimit",
    "frontend.searchAttributesTotalSizeLimit",
    "limit.historyCount.error",
    "limit.historyCount.warn",
    "limit.historyCount.suggestContinueAsNew",
    "limit.historySize.error",
    "limit.historySize.warn",
    "limit.historySize.suggestContinueAsNew",
    "limit.numPendingActivities.error",
    "limit.numPendingChildExecutions.error",
    "limit.numPendingSignals.error",
    "limit.numPendingCancelRequests.error",
];

/// Temporal's feature switches (off by default in some Temporal versions, set by the official
/// SDKs' test harnesses) for features Perdure always has on.
pub const SWITCHES: &[&str] = &[
    "system.enableEagerWorkflowStart",
    "system.forceSearchAttributesCacheRefreshOnRead",
    "frontend.enableUpdateWorkflowExecution",
    "frontend.enableUpdateWorkflowExecutionAsyncAccepted",
    "frontend.enableExecuteMultiOperation",
    "frontend.activityAPIsEnabled",
    "frontend.enableBatcher",
    "frontend.workerVersioningWorkflowAPIs",
    "frontend.workerVersioningDataAPIs",
    "system.enableDeploymentVersions",
    "history.enableChasm",
    "activity.enableStandalone",
];

/// Applies one `KEY=VALUE` setting. A limit's value is a JSON number (quotes are accepted), a
/// switch's `true` or `false`.
pub fn apply(limits: &mut Limits, setting: &str) -> Result<Outcome, SettingError> {
    let (key, value) = setting
        .split_once('=')
        .ok_or_else(|| SettingError::Syntax(setting.to_string()))?;
    let (key, raw) = (key.trim(), value.trim());
    if key.is_empty() {
        return Err(SettingError::Syntax(setting.to_string()));
    }
    if SWITCHES.contains(&key) {
        return match raw.trim_matches('"').to_ascii_lowercase().as_str() {
            "true" => Ok(Outcome::AlwaysOn),
            "false" => Ok(Outcome::CannotDisable),
            _ => Err(SettingError::BadSwitch {
                key: key.to_string(),
                value: raw.to_string(),
            }),
        };
    }
    if !KEYS.contains(&key) {
        // Checked before the value, so an unknown key with any value is only reported.
        return Ok(Outcome::Unknown);
    }
    let n: usize = raw
        .trim_matches('"')
        .parse()
        .map_err(|_| SettingError::BadValue {
            key: key.to_string(),
            value: raw.to_string(),
        })?;
    let field = match key {
        "limit.blobSize.error" => {
            // Failures are measured against the blob limit, as in Temporal.
            limits.failure_size = n;
            &mut limits.blob_size
        }
        "limit.memoSize.error" => &mut limits.memo_size,
        "limit.maxIDLength" => &mut limits.id_length,
        "frontend.searchAttributesNumberOfKeysLimit" => &mut limits.search_attribute_keys,
        "frontend.searchAttributesSizeOfValueLimit" => &mut limits.search_attribute_value_size,
        "frontend.searchAttributesTotalSizeLimit" => &mut limits.search_attributes_total_size,
        "limit.historyCount.error" => &mut limits.history_count,
        "limit.historyCount.warn" => &mut limits.history_count_warn,
        "limit.historyCount.suggestContinueAsNew" => {
            &mut limits.history_count_suggest_continue_as_new
        }
        "limit.historySize.error" => &mut limits.history_size,
        "limit.historySize.warn" => &mut limits.history_size_warn,
        "limit.historySize.suggestContinueAsNew" => {
            &mut limits.history_size_suggest_continue_as_new
        }
        "limit.numPendingActivities.error" => &mut limits.pending_activities,
        "limit.numPendingChildExecutions.error" => &mut limits.pending_children,
        "limit.numPendingSignals.error" => &mut limits.pending_signals,
        "limit.numPendingCancelRequests.error" => &mut limits.pending_cancels,
        _ => return Ok(Outcome::Unknown),
    };
    *field = n;
    Ok(Outcome::Applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_applies_and_bad_settings_are_refused() {
        for key in KEYS {
            let mut l = Limits::default();
            apply(&mut l, &format!("{key}=7")).unwrap();
            assert_ne!(
                format!("{l:?}"),
                format!("{:?}", Limits::default()),
                "{key}"
            );
        }
        let mut l = Limits::default();
        apply(&mut l, "limit.blobSize.error=\"4194304\"").unwrap();
        assert_eq!((l.blob_size, l.failure_size), (4 << 20, 4 << 20));
        let before = format!("{l:?}");
        assert_eq!(apply(&mut l, "limit.nope=1"), Ok(Outcome::Unknown));
        assert_eq!(
            apply(&mut l, "system.enableEagerWorkflowStart=true"),
            Ok(Outcome::AlwaysOn)
        );
        assert_eq!(
            apply(&mut l, "frontend.activityAPIsEnabled=false"),
            Ok(Outcome::CannotDisable)
        );
        assert!(matches!(
            apply(&mut l, "frontend.activityAPIsEnabled=1"),
            Err(SettingError::BadSwitch { .. })
        ));
        assert_eq!(
            format!("{l:?}"),
            before,
            "switches and unknown keys change nothing"
        );
        assert!(matches!(apply(&mut l, "=1"), Err(SettingError::Syntax(_))));
        assert!(matches!(
            apply(&mut l, "limit.maxIDLength=-1"),
            Err(SettingError::BadValue { .. })
        ));
        assert!(matches!(
            apply(&mut l, "limit.maxIDLength"),
            Err(SettingError::Syntax(_))
        ));
    }
}
