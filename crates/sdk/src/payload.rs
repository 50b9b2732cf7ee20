//! The default payload converter, byte-compatible with the TypeScript and Python SDKs: `None`/`()`
//! is `binary/null`, raw bytes are `binary/plain`, everything else is compact JSON (`json/plain`).

use std::collections::HashMap;

use serde::Serialize;
use serde::de::DeserializeOwned;
use temporalio_protos::temporal::api::common::v1::{Payload, Payloads};

/// Metadata key naming a payload's encoding.
pub const ENCODING: &str = "encoding";
/// `null`, `None`, `undefined`, `()`.
pub const BINARY_NULL: &[u8] = b"binary/null";
/// Raw bytes.
pub const BINARY_PLAIN: &[u8] = b"binary/plain";
/// JSON text.
pub const JSON_PLAIN: &[u8] = b"json/plain";
/// A protobuf message in proto3 JSON (its type in the `messageType` metadata).
pub const JSON_PROTOBUF: &[u8] = b"json/protobuf";

/// A value could not be turned into a payload, or a payload into the requested type.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("cannot encode value as JSON: {0}")]
    Encode(#[source] serde_json::Error),
    #[error("cannot decode {encoding} payload: {source}")]
    Decode {
        encoding: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("unsupported payload encoding {0:?} (no codec for it)")]
    UnknownEncoding(String),
    #[error("expected a payload but there was none")]
    Missing,
}

fn with_encoding(encoding: &[u8], data: Vec<u8>) -> Payload {
    Payload {
        metadata: HashMap::from([(ENCODING.to_string(), encoding.to_vec())]),
        data,
        ..Default::default()
    }
}

/// Encodes a value: `()`, `None` and JSON `null` become `binary/null`, the rest `json/plain`.
pub fn to_payload<T: Serialize + ?Sized>(value: &T) -> Result<Payload, PayloadError> {
    let v = serde_json::to_value(value).map_err(PayloadError::Encode)?;
    if v.is_null() {
        return Ok(with_encoding(BINARY_NULL, Vec::new()));
    }
    let data = serde_json::to_vec(&v).map_err(PayloadError::Encode)?;
    Ok(with_encoding(JSON_PLAIN, data))
}

/// Raw bytes as a `binary/plain` payload (Python `bytes`, TypeScript `Uint8Array`).
pub fn binary(bytes: impl Into<Vec<u8>>) -> Payload {
    with_encoding(BINARY_PLAIN, bytes.into())
}

/// The encoding of a payload, as text.
pub fn encoding(p: &Payload) -> String {
    p.metadata
        .get(ENCODING)
        .map(|e| String::from_utf8_lossy(e).into_owned())
        .unwrap_or_default()
}

/// Decodes a payload into `T`. `binary/null` decodes as JSON `null` (so into `()` or `Option`),
/// `binary/plain` as an array of bytes (so into `Vec<u8>`).
pub fn from_payload<T: DeserializeOwned>(p: &Payload) -> Result<T, PayloadError> {
    let enc = encoding(p);
    let err = |source| PayloadError::Decode {
        encoding: enc.clone(),
        source,
    };
    match enc.as_bytes() {
        BINARY_NULL => serde_json::from_value(serde_json::Value::Null).map_err(err),
        JSON_PLAIN | JSON_PROTOBUF => serde_json::from_slice(&p.data).map_err(err),
        BINARY_PLAIN => {
            serde_json::from_value(serde_json::Value::from(p.data.clone())).map_err(err)
        }
        _ => Err(PayloadError::UnknownEncoding(enc.clone())),
    }
}

/// Decodes the first payload of an optional list; a missing one decodes as `null`.
pub fn from_payloads<T: DeserializeOwned>(p: Option<&Payloads>) -> Result<T, PayloadError> {
    match p.and_then(|p| p.payloads.first()) {
        Some(first) => from_payload(first),
        None => serde_json::from_value(serde_json::Value::Null).map_err(|_| PayloadError::Missing),
    }
}

/// Arguments of a workflow, signal, query or update: `()` for none, a tuple for one or more, or
/// ready-made [`Payloads`].
pub trait ToPayloads {
    /// Encodes the arguments, one payload each.
    fn to_payloads(&self) -> Result<Payloads, PayloadError>;
}

impl ToPayloads for () {
    fn to_payloads(&self) -> Result<Payloads, PayloadError> {
        Ok(Payloads::default())
    }
}

impl ToPayloads for Payloads {
    fn to_payloads(&self) -> Result<Payloads, PayloadError> {
        Ok(self.clone())
    }
}

impl ToPayloads for Vec<Payload> {
    fn to_payloads(&self) -> Result<Payloads, PayloadError> {
        Ok(Payloads {
            payloads: self.clone(),
        })
    }
}

macro_rules! tuple_args {
    ($($name:ident),+) => {
        impl<$($name: Serialize),+> ToPayloads for ($($name,)+) {
            #[allow(non_snake_case)]
            fn to_payloads(&self) -> Result<Payloads, PayloadError> {
                let ($($name,)+) = self;
                Ok(Payloads { payloads: vec![$(to_payload($name)?),+] })
            }
        }
    };
}
tuple_args!(A);
tuple_args!(A, B);
tuple_args!(A, B, C);
tuple_args!(A, B, C, D);
tuple_args!(A, B, C, D, E);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_match_the_other_sdks() {
        let p = to_payload(&serde_json::json!({"productId": 3, "state": "Paid"})).unwrap();
        assert_eq!(encoding(&p), "json/plain");
        assert_eq!(p.data, br#"{"productId":3,"state":"Paid"}"#);
        let n = to_payload(&()).unwrap();
        assert_eq!(encoding(&n), "binary/null");
        assert!(n.data.is_empty());
        assert_eq!(encoding(&to_payload(&None::<i32>).unwrap()), "binary/null");
        let b = binary(vec![1, 2, 3]);
        assert_eq!(from_payload::<Vec<u8>>(&b).unwrap(), vec![1, 2, 3]);
        assert_eq!(from_payload::<Option<i32>>(&n).unwrap(), None);
        assert_eq!(from_payload::<()>(&n).unwrap(), ());
        let s = to_payload("hé").unwrap();
        assert_eq!(s.data, "\"hé\"".as_bytes());
    }

    #[test]
    fn tuples_are_argument_lists() {
        assert!(().to_payloads().unwrap().payloads.is_empty());
        let p = (3, "a").to_payloads().unwrap();
        assert_eq!(p.payloads.len(), 2);
        assert_eq!(from_payload::<i32>(&p.payloads[0]).unwrap(), 3);
        assert!(from_payload::<i32>(&p.payloads[1]).is_err());
        let mut odd = binary(vec![]);
        odd.metadata
            .insert(ENCODING.into(), b"binary/encrypted".to_vec());
        assert!(matches!(
            from_payload::<i32>(&odd),
            Err(PayloadError::UnknownEncoding(_))
        ));
    }
}
