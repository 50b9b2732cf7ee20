//! Values recorded in history as markers: [`WfContext::side_effect`] and versioning with
//! [`WfContext::patched`] and [`WfContext::deprecate_patch`].

use std::collections::HashMap;

use serde::Serialize;
use serde::de::DeserializeOwned;
use temporalio_protos::temporal::api::command::v1::RecordMarkerCommandAttributes;
use temporalio_protos::temporal::api::command::v1::command::Attributes as CommandAttributes;
use temporalio_protos::temporal::api::common::v1::Payloads;

use super::commands::CommandKind;
use super::{WfContext, WorkflowResult};
use crate::payload::{self, ToPayloads};

/// Marker name of [`WfContext::side_effect`].
pub const SIDE_EFFECT_MARKER: &str = "SideEffect";
/// Marker name of [`WfContext::patched`].
pub const PATCH_MARKER: &str = "Patch";

impl WfContext {
    /// Runs `f` once and records its value in history; replays return the recorded value
    /// without running `f` again. For non-deterministic reads (a random id, the wall clock).
    pub fn side_effect<T: Serialize + DeserializeOwned>(
        &self,
        f: impl FnOnce() -> T,
    ) -> WorkflowResult<T> {
        let recorded = {
            let mut s = self.state.borrow_mut();
            if s.replaying {
                let i = s.markers.iter().position(|(n, _)| n == SIDE_EFFECT_MARKER);
                i.and_then(|i| s.markers.remove(i))
            } else {
                None
            }
        };
        let (value, data) = match recorded.and_then(|(_, mut d)| d.remove("data")) {
            Some(data) => (payload::from_payloads::<T>(Some(&data))?, data),
            None => {
                let v = f();
                let data = Payloads {
                    payloads: vec![payload::to_payload(&v)?],
                };
                (v, data)
            }
        };
        self.push_marker(
            SIDE_EFFECT_MARKER,
            HashMap::from([("data".to_string(), data)]),
        );
        Ok(value)
    }

    fn push_marker(&self, name: &str, details: HashMap<String, Payloads>) {
        self.push_command(
            CommandKind::Marker(name.to_string()),
            CommandAttributes::RecordMarkerCommandAttributes(RecordMarkerCommandAttributes {
                marker_name: name.to_string(),
                details,
                ..Default::default()
            }),
        );
    }

    fn patch_marker(
        &self,
        id: &str,
        deprecated: bool,
    ) -> WorkflowResult<HashMap<String, Payloads>> {
        Ok(HashMap::from([
            ("patch_id".to_string(), (id,).to_payloads()?),
            ("deprecated".to_string(), (deprecated,).to_payloads()?),
        ]))
    }

    fn take_patch_marker(&self, id: &str) -> bool {
        let mut s = self.state.borrow_mut();
        let i = s.markers.iter().position(|(n, d)| {
            n == PATCH_MARKER
                && d.get("patch_id")
                    .and_then(|p| payload::from_payloads::<String>(Some(p)).ok())
                    .as_deref()
                    == Some(id)
        });
        i.and_then(|i| s.markers.remove(i)).is_some()
    }

    /// Versioning: true when this run executes (or executed) the code after change `id`, false
    /// when it is being replayed from a history made before the change. Stable for the run.
    pub fn patched(&self, id: &str) -> bool {
        if let Some(&v) = self.state.borrow().patches.get(id) {
            return v;
        }
        let replaying = self.is_replaying();
        let v = !replaying || self.take_patch_marker(id);
        if v && let Ok(details) = self.patch_marker(id, false) {
            self.push_marker(PATCH_MARKER, details);
        }
        self.state.borrow_mut().patches.insert(id.to_string(), v);
        v
    }

    /// Marks change `id` as the only code path left (every run that could take the old path has
    /// finished); keeps histories made with [`patched`](Self::patched) replayable.
    pub fn deprecate_patch(&self, id: &str) {
        if self.state.borrow().patches.contains_key(id) {
            return;
        }
        let record = !self.is_replaying() || self.take_patch_marker(id);
        if record && let Ok(details) = self.patch_marker(id, true) {
            self.push_marker(PATCH_MARKER, details);
        }
        self.state.borrow_mut().patches.insert(id.to_string(), true);
    }
}
