//! The connection: the metadata every call carries (API key, namespace, SDK name and version,
//! custom headers), TLS, and [`Client::connect`].

use std::sync::Arc;
use std::time::Duration;

use temporalio_protos::temporal::api::operatorservice::v1::operator_service_client::OperatorServiceClient;
use temporalio_protos::temporal::api::workflowservice::v1 as ws;
use temporalio_protos::temporal::api::workflowservice::v1::workflow_service_client::WorkflowServiceClient;
use tonic::codec::CompressionEncoding;
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use super::rpc::request_with_timeout;
use super::{Client, ClientOptions, Inner, Result};
use crate::error::ClientError;

/// The channel every service client uses: adds the API key and custom headers to each call.
pub type Transport = InterceptedService<Channel, Headers>;

/// Adds fixed metadata to every request.
#[derive(Clone, Default)]
pub struct Headers(Arc<Vec<(AsciiMetadataKey, AsciiMetadataValue)>>);

impl Headers {
    /// The metadata every call carries: the API key, the namespace, the SDK's name and version,
    /// and the caller's own headers.
    fn for_options(options: &ClientOptions) -> Result<Headers> {
        let mut headers = Vec::new();
        let mut add = |k: &str, v: &str| -> Result<()> {
            let key = AsciiMetadataKey::from_bytes(k.as_bytes())
                .map_err(|_| ClientError::InvalidArgument(format!("bad header name {k:?}")))?;
            let value = AsciiMetadataValue::try_from(v)
                .map_err(|_| ClientError::InvalidArgument(format!("bad value for header {k}")))?;
            headers.push((key, value));
            Ok(())
        };
        if let Some(key) = &options.api_key {
            add("authorization", &format!("Bearer {key}"))?;
        }
        add("temporal-namespace", &options.namespace)?;
        add("client-name", "perdure-sdk")?;
        add("client-version", env!("CARGO_PKG_VERSION"))?;
        for (k, v) in &options.headers {
            add(k, v)?;
        }
        Ok(Headers(Arc::new(headers)))
    }
}

impl Interceptor for Headers {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        for (k, v) in self.0.iter() {
            req.metadata_mut().insert(k.clone(), v.clone());
        }
        Ok(req)
    }
}

impl Client {
    /// Connects and checks that the server answers (`GetSystemInfo`).
    pub async fn connect(options: ClientOptions) -> Result<Client> {
        let unreachable = |message: String| ClientError::Unreachable {
            address: options.address.clone(),
            message,
        };
        let scheme = if options.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let uri = if options.address.contains("://") {
            options.address.clone()
        } else {
            format!("{scheme}://{}", options.address)
        };
        let mut endpoint = Endpoint::from_shared(uri)
            .map_err(|e| ClientError::InvalidArgument(format!("bad address: {e}")))?
            .connect_timeout(options.connect_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_while_idle(true);
        if let Some(tls) = &options.tls {
            let mut cfg = ClientTlsConfig::new().with_native_roots();
            if let Some(d) = &tls.domain {
                cfg = cfg.domain_name(d.clone());
            }
            if let Some(pem) = &tls.ca_pem {
                cfg = cfg.ca_certificate(tonic::transport::Certificate::from_pem(pem));
            }
            if let Some(id) = &tls.client_identity {
                cfg = cfg.identity(tonic::transport::Identity::from_pem(
                    &id.cert_pem,
                    &id.key_pem,
                ));
            }
            endpoint = endpoint
                .tls_config(cfg)
                .map_err(|e| ClientError::InvalidArgument(format!("TLS: {e}")))?;
        }
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| unreachable(source_chain(&e)))?;
        let headers = Headers::for_options(&options)?;
        let workflow = WorkflowServiceClient::with_interceptor(channel.clone(), headers.clone())
            .accept_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(128 << 20)
            .max_encoding_message_size(128 << 20);
        let health = tonic_health::pb::health_client::HealthClient::with_interceptor(
            channel.clone(),
            headers.clone(),
        );
        let operator = OperatorServiceClient::with_interceptor(channel, headers)
            .accept_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(128 << 20);
        let client = Client {
            inner: Arc::new(Inner {
                workflow,
                operator,
                health,
                namespace: options.namespace.clone(),
                identity: options.identity.clone(),
                address: options.address.clone(),
            }),
        };
        client
            .workflow_service()
            .get_system_info(request_with_timeout(
                ws::GetSystemInfoRequest {},
                options.connect_timeout,
            ))
            .await
            .map_err(|s| match s.code() {
                tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Unknown => {
                    unreachable(s.message().to_string())
                }
                _ => ClientError::from(s),
            })?;
        Ok(client)
    }
}

fn source_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_key_is_a_bearer_header_and_turns_tls_on() {
        let o = ClientOptions::new("example.com:7233")
            .namespace("ns")
            .api_key("s3cret")
            .header("x-team", "orders");
        assert!(o.tls.is_some(), "an API key implies TLS");
        let mut h = Headers::for_options(&o).unwrap();
        let req = h.call(tonic::Request::new(())).unwrap();
        let md = req.metadata();
        assert_eq!(md.get("authorization").unwrap(), "Bearer s3cret");
        assert_eq!(md.get("temporal-namespace").unwrap(), "ns");
        assert_eq!(md.get("x-team").unwrap(), "orders");
        let bad = ClientOptions::new("x:1").header("bad header", "v");
        assert!(matches!(
            Headers::for_options(&bad),
            Err(ClientError::InvalidArgument(_))
        ));
    }
}
