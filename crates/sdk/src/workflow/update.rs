//! Update handlers: [`WfContext::on_update`] and [`WfContext::on_update_validated`], and the
//! delivery of an update request (validate, accept or reject, run, respond).

use std::future::Future;
use std::rc::Rc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use temporalio_protos::temporal::api::command::v1::ProtocolMessageCommandAttributes;
use temporalio_protos::temporal::api::command::v1::command::Attributes as CommandAttributes;
use temporalio_protos::temporal::api::common::v1::{Payload, Payloads};
use temporalio_protos::temporal::api::failure::v1::Failure;
use temporalio_protos::temporal::api::protocol::v1::Message as ProtocolMessage;
use temporalio_protos::temporal::api::update::v1 as update;

use super::WfContext;
use super::commands::CommandKind;
use crate::failure::ApplicationFailure;
use crate::payload;

type UpdateValidator = Box<dyn Fn(Option<&Payloads>) -> Result<(), String>>;
type UpdateRun = Rc<
    dyn Fn(Option<Payloads>) -> futures::future::LocalBoxFuture<'static, Result<Payload, Failure>>,
>;

pub(crate) struct UpdateHandler {
    validate: UpdateValidator,
    run: UpdateRun,
}

impl WfContext {
    /// Handles the update `name`: `handler` gets its first argument; its result (or failure) is
    /// the update's outcome. Requests are accepted without validation.
    pub fn on_update<I, O, Fut>(&self, name: &str, handler: impl Fn(I) -> Fut + 'static)
    where
        I: DeserializeOwned + 'static,
        O: Serialize + 'static,
        Fut: Future<Output = Result<O, ApplicationFailure>> + 'static,
    {
        self.on_update_validated(name, |_: &I| Ok(()), handler)
    }

    /// Like [`on_update`](Self::on_update), with a validator that can reject a request before
    /// it is accepted (a rejected update leaves no trace in history).
    pub fn on_update_validated<I, O, Fut>(
        &self,
        name: &str,
        validator: impl Fn(&I) -> Result<(), String> + 'static,
        handler: impl Fn(I) -> Fut + 'static,
    ) where
        I: DeserializeOwned + 'static,
        O: Serialize + 'static,
        Fut: Future<Output = Result<O, ApplicationFailure>> + 'static,
    {
        let validate: UpdateValidator = Box::new(move |p: Option<&Payloads>| {
            let arg = payload::from_payloads::<I>(p).map_err(|e| e.to_string())?;
            validator(&arg)
        });
        let handler = Rc::new(handler);
        let run: UpdateRun = Rc::new(move |p: Option<Payloads>| {
            let handler = handler.clone();
            Box::pin(async move {
                let arg = payload::from_payloads::<I>(p.as_ref())
                    .map_err(|e| ApplicationFailure::non_retryable(e.to_string()).to_failure())?;
                let out = handler(arg).await.map_err(|f| f.to_failure())?;
                payload::to_payload(&out)
                    .map_err(|e| ApplicationFailure::non_retryable(e.to_string()).to_failure())
            }) as futures::future::LocalBoxFuture<'static, Result<Payload, Failure>>
        });
        self.state
            .borrow_mut()
            .update_handlers
            .insert(name.to_string(), UpdateHandler { validate, run });
    }

    fn push_message(
        &self,
        kind: Option<CommandKind>,
        id: String,
        instance: &str,
        type_name: &str,
        body: Vec<u8>,
    ) {
        self.state.borrow_mut().messages.push(ProtocolMessage {
            id: id.clone(),
            protocol_instance_id: instance.to_string(),
            body: Some(prost_wkt_types::Any {
                type_url: format!("type.googleapis.com/{type_name}"),
                value: body,
            }),
            sequencing_id: None,
        });
        if let Some(kind) = kind {
            self.push_command(
                kind,
                CommandAttributes::ProtocolMessageCommandAttributes(
                    ProtocolMessageCommandAttributes { message_id: id },
                ),
            );
        }
    }

    /// Delivers an update request: validates it (not on replay), accepts it and runs its handler.
    pub(crate) fn deliver_update(
        &self,
        message_id: &str,
        sequencing_event_id: i64,
        instance: &str,
        request: update::Request,
        replaying: bool,
    ) {
        use prost::Message as _;
        let update_id = request
            .meta
            .as_ref()
            .map(|m| m.update_id.clone())
            .unwrap_or_else(|| instance.to_string());
        if !self
            .state
            .borrow_mut()
            .updates_seen
            .insert(update_id.clone())
        {
            return;
        }
        let name = request
            .input
            .as_ref()
            .map(|i| i.name.clone())
            .unwrap_or_default();
        let args = request.input.as_ref().and_then(|i| i.args.clone());
        let check = {
            let s = self.state.borrow();
            match s.update_handlers.get(&name) {
                None => Err(format!("No handler for update {name}")),
                Some(_) if replaying => Ok(()),
                Some(h) => (h.validate)(args.as_ref()),
            }
        };
        if let Err(msg) = check {
            let rejection = update::Rejection {
                rejected_request_message_id: message_id.to_string(),
                rejected_request_sequencing_event_id: sequencing_event_id,
                rejected_request: Some(request),
                failure: Some(ApplicationFailure::new(msg).to_failure()),
            };
            // A rejection is a message only: no command, no event.
            self.push_message(
                None,
                format!("{instance}/reject"),
                instance,
                "temporal.api.update.v1.Rejection",
                rejection.encode_to_vec(),
            );
            return;
        }
        let acceptance = update::Acceptance {
            accepted_request_message_id: message_id.to_string(),
            accepted_request_sequencing_event_id: sequencing_event_id,
            accepted_request: Some(request.clone()),
        };
        self.push_message(
            Some(CommandKind::UpdateAccept(instance.to_string())),
            format!("{instance}/accept"),
            instance,
            "temporal.api.update.v1.Acceptance",
            acceptance.encode_to_vec(),
        );
        let run = self
            .state
            .borrow()
            .update_handlers
            .get(&name)
            .map(|h| h.run.clone());
        let Some(run) = run else { return };
        let ctx = self.clone();
        let instance = instance.to_string();
        let meta = request.meta.clone();
        let task = Box::pin(async move {
            let outcome = match run(args).await {
                Ok(p) => update::outcome::Value::Success(Payloads { payloads: vec![p] }),
                Err(f) => update::outcome::Value::Failure(f),
            };
            let response = update::Response {
                meta,
                outcome: Some(update::Outcome {
                    value: Some(outcome),
                }),
            };
            ctx.push_message(
                Some(CommandKind::UpdateComplete(update_id)),
                format!("{instance}/complete"),
                &instance,
                "temporal.api.update.v1.Response",
                response.encode_to_vec(),
            );
        });
        let mut s = self.state.borrow_mut();
        s.spawned.push(task);
        s.progress += 1;
    }
}
