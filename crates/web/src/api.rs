//! Temporal's HTTP API: a request matched against the route table is turned into its gRPC
//! message, sent to the server's own gRPC port, and the answer (or the error, as Temporal's JSON
//! error body with the matching HTTP status) is written back as proto3 JSON.

use std::sync::Arc;

use axum::body::Bytes;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use prost::Message;
use prost_reflect::{DynamicMessage, MessageDescriptor};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;

use crate::json::{self, Style};
use crate::routes::{Body, Routes, percent_decode, pool};

/// Largest request body accepted (gRPC's default message size, as Temporal's HTTP API).
pub const MAX_BODY: usize = 4 * 1024 * 1024;

/// What the API handlers share: the route table and a channel to the gRPC port.
#[derive(Clone)]
pub struct Api {
    pub routes: Arc<Routes>,
    pub channel: Channel,
}

/// A gRPC error (or a request that never reached gRPC) on its way to becoming an HTTP answer.
pub struct ApiError(pub tonic::Status);

impl ApiError {
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError(tonic::Status::invalid_argument(message))
    }
}

impl Api {
    /// Sends one request message to the gRPC method at `grpc_path`.
    pub async fn call(
        &self,
        grpc_path: &str,
        request: DynamicMessage,
        output: MessageDescriptor,
    ) -> Result<DynamicMessage, tonic::Status> {
        let mut grpc = tonic::client::Grpc::new(self.channel.clone());
        grpc.ready().await.map_err(|e| {
            tonic::Status::unavailable(format!("the gRPC service is not ready: {e}"))
        })?;
        let path = http::uri::PathAndQuery::try_from(grpc_path)
            .map_err(|e| tonic::Status::internal(e.to_string()))?;
        let mut req = tonic::Request::new(request);
        req.metadata_mut()
            .insert("client-name", "perdure-http-api".parse().expect("ascii"));
        Ok(grpc.unary(req, path, DynCodec(output)).await?.into_inner())
    }

    /// Serves one HTTP API request; `api_only` limits matching to the `/api/v1` bindings (the
    /// UI port, whose other paths are pages).
    pub async fn serve(
        &self,
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        body: Bytes,
        api_only: bool,
    ) -> Response {
        let query = parse_query(uri.query().unwrap_or(""));
        let style = style(&headers, &query);
        match self
            .handle(&method, &uri, &query, body, style, api_only)
            .await
        {
            Ok(text) => json_response(StatusCode::OK, text),
            Err(ApiError(status)) => error_response(&status, style),
        }
    }

    async fn handle(
        &self,
        method: &Method,
        uri: &Uri,
        query: &[(String, String)],
        body: Bytes,
        style: Style,
        api_only: bool,
    ) -> Result<String, ApiError> {
        let Some(matched) = self.routes.find(method, uri.path(), api_only) else {
            let status = if self.routes.any_verb(uri.path(), api_only) {
                tonic::Status::unimplemented(format!("Method {method} is not allowed here"))
            } else {
                tonic::Status::not_found(format!("Not Found: {}", uri.path()))
            };
            return Err(ApiError(status));
        };
        let route = matched.route;
        if body.len() > MAX_BODY {
            return Err(ApiError(tonic::Status::resource_exhausted(format!(
                "the request body is larger than {MAX_BODY} bytes"
            ))));
        }
        let body = match &route.body {
            Body::None => None,
            Body::All => Some((None, &body[..])),
            Body::Field(f) => Some((Some(f), &body[..])),
        };
        // Query parameters fill only what neither the path nor the body sets.
        let query: Vec<(String, String)> = if matches!(route.body, Body::All) {
            Vec::new()
        } else {
            query.to_vec()
        };
        let request = json::request(&route.input, body, &matched.vars, &query, style)
            .map_err(|e| ApiError::invalid(e.0))?;
        let response = self
            .call(&route.grpc_path, request, route.output.clone())
            .await
            .map_err(ApiError)?;
        json::response(&response, style).map_err(|e| ApiError(tonic::Status::internal(e)))
    }
}

/// `a=1&b=x%20y` → pairs, percent- and `+`-decoded.
pub fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let dec = |s: &str| {
                let s = s.replace('+', " ");
                percent_decode(&s).unwrap_or(s)
            };
            (dec(k), dec(v))
        })
        .collect()
}

/// The response style from `Accept` (`application/json+pretty+no-payload-shorthand`) or the
/// query flags `pretty` and `noPayloadShorthand`, as Temporal reads them.
fn style(headers: &HeaderMap, query: &[(String, String)]) -> Style {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    Style {
        pretty: accept.contains("+pretty") || query.iter().any(|(k, _)| k == "pretty"),
        no_shorthand: accept.contains("+no-payload-shorthand")
            || query.iter().any(|(k, _)| k == "noPayloadShorthand"),
    }
}

fn json_response(status: StatusCode, text: String) -> Response {
    let mut r = (status, text).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// gRPC code → HTTP status, as grpc-gateway (and so Temporal's HTTP API) maps them.
pub fn http_status(code: tonic::Code) -> StatusCode {
    use tonic::Code::*;
    match code {
        Ok => StatusCode::OK,
        Cancelled => StatusCode::from_u16(499).expect("valid"),
        InvalidArgument | FailedPrecondition | OutOfRange => StatusCode::BAD_REQUEST,
        DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        NotFound => StatusCode::NOT_FOUND,
        AlreadyExists | Aborted => StatusCode::CONFLICT,
        PermissionDenied => StatusCode::FORBIDDEN,
        Unauthenticated => StatusCode::UNAUTHORIZED,
        ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Unknown | Internal | DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Temporal's error body: the `google.rpc.Status` in proto3 JSON, its details (Temporal's
/// error-detail messages) as `{"@type": ..., ...}`.
pub fn error_response(status: &tonic::Status, style: Style) -> Response {
    let text = error_body(status, style);
    json_response(http_status(status.code()), text)
}

fn error_body(status: &tonic::Status, style: Style) -> String {
    let fallback = || {
        serde_json::json!({ "code": status.code() as i32, "message": status.message() }).to_string()
    };
    let Some(desc) = pool().get_message_by_name("google.rpc.Status") else {
        return fallback();
    };
    let mut message = if status.details().is_empty() {
        DynamicMessage::new(desc.clone())
    } else {
        DynamicMessage::decode(desc.clone(), status.details())
            .unwrap_or_else(|_| DynamicMessage::new(desc.clone()))
    };
    message.set_field_by_name("code", prost_reflect::Value::I32(status.code() as i32));
    message.set_field_by_name(
        "message",
        prost_reflect::Value::String(status.message().to_string()),
    );
    json::response(&message, style).unwrap_or_else(|_| fallback())
}

/// A codec for messages known only by their descriptor.
struct DynCodec(MessageDescriptor);

struct DynEncoder;
struct DynDecoder(MessageDescriptor);

impl Codec for DynCodec {
    type Encode = DynamicMessage;
    type Decode = DynamicMessage;
    type Encoder = DynEncoder;
    type Decoder = DynDecoder;

    fn encoder(&mut self) -> DynEncoder {
        DynEncoder
    }

    fn decoder(&mut self) -> DynDecoder {
        DynDecoder(self.0.clone())
    }
}

impl Encoder for DynEncoder {
    type Item = DynamicMessage;
    type Error = tonic::Status;

    fn encode(&mut self, item: DynamicMessage, dst: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        item.encode(dst)
            .map_err(|e| tonic::Status::internal(e.to_string()))
    }
}

impl Decoder for DynDecoder {
    type Item = DynamicMessage;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<DynamicMessage>, Self::Error> {
        DynamicMessage::decode(self.0.clone(), src)
            .map(Some)
            .map_err(|e| tonic::Status::internal(e.to_string()))
    }
}
