//! Signal and query handlers: [`WfContext::on_signal`] (with signals buffered until a handler
//! is set) and [`WfContext::on_query`].

use serde::Serialize;
use serde::de::DeserializeOwned;
use temporalio_protos::temporal::api::common::v1::Payloads;

use super::WfContext;
use super::state::{QueryHandler, SignalHandler};
use crate::payload;

impl WfContext {
    /// Handles the signal `name`: `handler` gets its first argument. Signals that arrived before
    /// the handler was set are delivered now, in order.
    pub fn on_signal<I: DeserializeOwned + 'static>(
        &self,
        name: &str,
        mut handler: impl FnMut(I) + 'static,
    ) {
        let boxed: SignalHandler = Box::new(
            move |p: Option<Payloads>| match payload::from_payloads::<I>(p.as_ref()) {
                Ok(v) => handler(v),
                Err(e) => tracing::warn!("signal argument could not be decoded: {e}"),
            },
        );
        let buffered = {
            let mut s = self.state.borrow_mut();
            s.signal_handlers.insert(name.to_string(), boxed);
            s.buffered_signals.remove(name).unwrap_or_default()
        };
        for p in buffered {
            self.deliver_signal(name, p);
        }
    }

    pub(crate) fn deliver_signal(&self, name: &str, input: Option<Payloads>) {
        // Take the handler out while it runs so that it may use the context.
        let handler = self.state.borrow_mut().signal_handlers.remove(name);
        match handler {
            Some(mut h) => {
                h(input);
                let mut s = self.state.borrow_mut();
                s.signal_handlers.entry(name.to_string()).or_insert(h);
                s.progress += 1;
            }
            None => {
                let mut s = self.state.borrow_mut();
                s.buffered_signals
                    .entry(name.to_string())
                    .or_default()
                    .push_back(input);
            }
        }
    }

    /// Answers the query `name` with `handler` (which must not change workflow state).
    pub fn on_query<I: DeserializeOwned + 'static, O: Serialize + 'static>(
        &self,
        name: &str,
        handler: impl Fn(I) -> O + 'static,
    ) {
        let boxed: QueryHandler = Box::new(move |p: Option<Payloads>| {
            let arg = payload::from_payloads::<I>(p.as_ref()).map_err(|e| e.to_string())?;
            payload::to_payload(&handler(arg)).map_err(|e| e.to_string())
        });
        self.state
            .borrow_mut()
            .query_handlers
            .insert(name.to_string(), boxed);
    }
}
