//! The calls between the engines of a cluster, over gRPC: [`GrpcPeers`] is the engine's
//! `Peers` transport (one lazily connected channel per member), [`serve`] answers the
//! `perdure.peer.v1.Peer` methods on this process's gRPC port, and [`forward`] sends a public
//! request on to the process that serves it. Every such call carries this process's node name
//! and its view of the cluster (the topology epoch); a process holding another view refuses it
//! as UNAVAILABLE, which callers (and the SDKs) retry once the views agree again.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderValue, Request as HttpRequest, Response as HttpResponse};
use bytes::{Buf, BufMut};
use parking_lot::Mutex;
use perdure_core::Engine;
use perdure_core::cluster::{PeerAddr, PeerFuture, Peers};
use tonic::body::Body;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Response, Status};

/// Header naming the process that sent a call on; a call that was sent on is never sent on again.
pub(crate) const FORWARDED: &str = "perdure-forwarded-by";
/// Header carrying the sender's topology epoch.
pub(crate) const EPOCH: &str = "perdure-epoch";

/// Messages passed through as their encoded bytes.
#[derive(Clone, Copy, Default)]
pub(crate) struct RawCodec;

pub(crate) struct Raw;

impl Encoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let mut v = vec![0; src.remaining()];
        src.copy_to_slice(&mut v);
        Ok(Some(v))
    }
}

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;
    fn encoder(&mut self) -> Raw {
        Raw
    }
    fn decoder(&mut self) -> Raw {
        Raw
    }
}

/// Channels to the other members, by address.
#[derive(Default)]
struct Channels(Mutex<HashMap<String, Channel>>);

impl Channels {
    fn get(&self, address: &str) -> Result<Channel, Status> {
        let mut m = self.0.lock();
        if let Some(c) = m.get(address) {
            return Ok(c.clone());
        }
        let c = Endpoint::from_shared(format!("http://{address}"))
            .map_err(|e| Status::unavailable(format!("bad member address {address}: {e}")))?
            .connect_timeout(Duration::from_secs(2))
            .tcp_nodelay(true)
            .connect_lazy();
        m.insert(address.to_string(), c.clone());
        Ok(c)
    }
}

/// This process's side of the calls between engines.
#[derive(Clone)]
pub(crate) struct GrpcPeers {
    me: String,
    epoch: u64,
    channels: Arc<Channels>,
}

impl GrpcPeers {
    pub fn new(me: &str, epoch: u64) -> GrpcPeers {
        GrpcPeers {
            me: me.to_string(),
            epoch,
            channels: Default::default(),
        }
    }

    fn stamp<T>(&self, r: &mut Request<T>) {
        let md = r.metadata_mut();
        if let Ok(v) = MetadataValue::try_from(self.me.as_str()) {
            md.insert(FORWARDED, v);
        }
        md.insert(EPOCH, MetadataValue::from(self.epoch));
    }

    /// Sends the public request `r` (method `path`) to `to` and returns its answer as is.
    pub async fn forward<Q, A>(
        &self,
        to: &PeerAddr,
        path: &'static str,
        mut r: Request<Q>,
    ) -> Result<Response<A>, Status>
    where
        Q: prost::Message + Send + Sync + 'static,
        A: prost::Message + Default + Send + Sync + 'static,
    {
        if let Some(from) = r.metadata().get(FORWARDED) {
            return Err(Status::unavailable(format!(
                "Perdure process {} received a request sent on by {} that another process \
                 serves (the cluster is changing); retry",
                self.me,
                from.to_str().unwrap_or("?")
            )));
        }
        self.stamp(&mut r);
        // The message is sent on as plain bytes, and the answer comes back the same way.
        for h in ["grpc-encoding", "grpc-accept-encoding"] {
            r.metadata_mut().remove(h);
        }
        let channel = self.channels.get(&to.address)?;
        let mut client = tonic::client::Grpc::new(channel);
        client.ready().await.map_err(|e| unreachable(to, &e))?;
        client
            .unary(
                r,
                axum::http::uri::PathAndQuery::from_static(path),
                tonic_prost::ProstCodec::<Q, A>::default(),
            )
            .await
            .map_err(|s| reached(to, s))
    }
}

fn unreachable(to: &PeerAddr, e: &dyn std::fmt::Display) -> Status {
    Status::unavailable(format!(
        "cannot reach Perdure process {} at {}: {e}; retry",
        to.node, to.address
    ))
}

/// A failure of the call itself (not an answer of the other side) is retryable.
fn reached(to: &PeerAddr, s: Status) -> Status {
    let transport = s.code() == Code::Unknown && s.message().contains("transport")
        || s.code() == Code::Cancelled && s.message().contains("closed");
    if transport {
        unreachable(to, &s.message())
    } else {
        s
    }
}

impl Peers for GrpcPeers {
    fn call(&self, to: &PeerAddr, path: &str, body: Vec<u8>, timeout: Duration) -> PeerFuture {
        let me = self.clone();
        let to = to.clone();
        let path = path.to_string();
        Box::pin(async move {
            let mut r = Request::new(body);
            r.set_timeout(timeout);
            me.stamp(&mut r);
            let channel = me.channels.get(&to.address).map_err(to_error)?;
            let mut client = tonic::client::Grpc::new(channel);
            client
                .ready()
                .await
                .map_err(|e| to_error(unreachable(&to, &e)))?;
            let path = axum::http::uri::PathAndQuery::try_from(path)
                .map_err(|e| perdure_core::Error::Internal(e.to_string()))?;
            client
                .unary(r, path, RawCodec)
                .await
                .map(Response::into_inner)
                .map_err(|s| to_error(reached(&to, s)))
        })
    }
}

fn to_error(s: Status) -> perdure_core::Error {
    // A call that timed out or was cut has an unknown outcome: worth trying again (every call
    // between engines can be repeated).
    if matches!(
        s.code(),
        Code::Unavailable | Code::Cancelled | Code::DeadlineExceeded
    ) {
        return perdure_core::Error::Unavailable(s.message().to_string());
    }
    perdure_core::Error::Peer {
        code: s.code() as i32,
        message: s.message().to_string(),
        details: s.details().to_vec(),
    }
}

/// The engine's side of `perdure.peer.v1.Peer/<method>`.
struct PeerMethod {
    engine: Engine,
    method: String,
}

impl tonic::server::UnaryService<Vec<u8>> for PeerMethod {
    type Response = Vec<u8>;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Vec<u8>>, Status>> + Send>>;

    fn call(&mut self, r: Request<Vec<u8>>) -> Self::Future {
        let engine = self.engine.clone();
        let method = std::mem::take(&mut self.method);
        Box::pin(async move {
            engine
                .serve_peer(&method, r.get_ref())
                .await
                .map(Response::new)
                .map_err(crate::grpc::status)
        })
    }
}

/// Whether a call's sender holds the same view of the cluster as `engine` (a call without an
/// epoch comes from outside the cluster and is not checked).
pub(crate) fn same_view<B>(engine: &Engine, r: &HttpRequest<B>) -> Result<(), Status> {
    let Some(theirs) = r.headers().get(EPOCH) else {
        return Ok(());
    };
    let mine = engine.topology().map(|t| t.epoch());
    let theirs = theirs.to_str().ok().and_then(|v| v.parse::<u64>().ok());
    if mine.is_some() && mine == theirs {
        return Ok(());
    }
    Err(Status::unavailable(
        "this Perdure process holds another view of the cluster (a member joined or left); retry",
    ))
}

/// Answers one call from another engine.
pub(crate) async fn serve(
    engine: Engine,
    method: &str,
    r: HttpRequest<axum::body::Body>,
) -> HttpResponse<Body> {
    if let Err(s) = same_view(&engine, &r) {
        return status_response(s);
    }
    let svc = PeerMethod {
        engine,
        method: method.to_string(),
    };
    tonic::server::Grpc::new(RawCodec).unary(svc, r).await
}

pub(crate) fn status_response(s: Status) -> HttpResponse<Body> {
    let (parts, ()) = s.into_http::<()>().into_parts();
    HttpResponse::from_parts(parts, Body::empty())
}

/// Adds this process's name to a request it sends on unchanged.
pub(crate) fn mark_forwarded<B>(r: &mut HttpRequest<B>, me: &str) {
    if let Ok(v) = HeaderValue::from_str(me) {
        r.headers_mut().insert(FORWARDED, v);
    }
}
