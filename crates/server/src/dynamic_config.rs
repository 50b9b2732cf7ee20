//! `KEY=VALUE` settings named as in Temporal's dynamic config (`limit.blobSize.error=4194304`),
//! as `temporal server start-dev --dynamic-config-value` takes them, applied to the engine's
//! [`Limits`].

use perdure_core::limits::Limits;

/// A setting that cannot be applied.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SettingError {
    #[error("expected KEY=VALUE, got {0:?}")]
    Syntax(String),
    #[error("unknown dynamic config key {0:?} (known: {known})", known = KEYS.join(", "))]
    UnknownKey(String),
    #[error("{key} needs a non-negative whole number, got {value:?}")]
    BadValue { key: String, value: String },
}

/// Every key Perdure understands.
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

/// Applies one `KEY=VALUE` setting. The value is a JSON number (quotes are accepted).
pub fn apply(limits: &mut Limits, setting: &str) -> Result<(), SettingError> {
    let (key, value) = setting
        .split_once('=')
        .ok_or_else(|| SettingError::Syntax(setting.to_string()))?;
    let (key, raw) = (key.trim(), value.trim());
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
        _ => return Err(SettingError::UnknownKey(key.to_string())),
    };
    *field = n;
    Ok(())
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
        assert!(matches!(
            apply(&mut l, "limit.nope=1"),
            Err(SettingError::UnknownKey(_))
        ));
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
