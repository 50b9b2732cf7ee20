//! Task tokens: opaque bytes handed to workers that identify a workflow task, activity attempt or
//! query. Encoded as a small protobuf with a magic number so garbage is recognised.

use prost::Message;

use crate::error::Error;

const MAGIC: u32 = 0x7065_7264; // "perd"

/// What a token refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    Workflow = 1,
    Activity = 2,
    Query = 3,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct TaskToken {
    #[prost(uint32, tag = "1")]
    pub magic: u32,
    #[prost(int32, tag = "2")]
    pub kind: i32,
    #[prost(string, tag = "3")]
    pub namespace_id: String,
    #[prost(string, tag = "4")]
    pub workflow_id: String,
    #[prost(string, tag = "5")]
    pub run_id: String,
    #[prost(int64, tag = "6")]
    pub scheduled_event_id: i64,
    #[prost(int64, tag = "7")]
    pub started_event_id: i64,
    #[prost(int32, tag = "8")]
    pub attempt: i32,
    #[prost(int64, tag = "9")]
    pub dispatch_seq: i64,
    #[prost(uint64, tag = "10")]
    pub query_id: u64,
    #[prost(string, tag = "11")]
    pub activity_id: String,
}

impl TaskToken {
    pub fn new(kind: TokenKind, namespace_id: &str, workflow_id: &str, run_id: &str) -> Self {
        TaskToken {
            magic: MAGIC,
            kind: kind as i32,
            namespace_id: namespace_id.into(),
            workflow_id: workflow_id.into(),
            run_id: run_id.into(),
            ..Default::default()
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        self.encode_to_vec()
    }

    /// Decodes a token of the expected kind; anything else is INVALID_ARGUMENT.
    pub fn decode_kind(bytes: &[u8], kind: TokenKind) -> Result<Self, Error> {
        let bad = || Error::InvalidArgument("Error deserializing task token.".into());
        let t = TaskToken::decode(bytes).map_err(|_| bad())?;
        if t.magic != MAGIC || t.kind != kind as i32 || t.run_id.is_empty() {
            return Err(bad());
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_garbage() {
        let mut t = TaskToken::new(TokenKind::Activity, "ns", "wf", "run");
        t.scheduled_event_id = 5;
        let b = t.encode();
        assert_eq!(TaskToken::decode_kind(&b, TokenKind::Activity).unwrap(), t);
        assert!(TaskToken::decode_kind(&b, TokenKind::Workflow).is_err());
        assert!(TaskToken::decode_kind(b"garbage-token", TokenKind::Activity).is_err());
        assert!(TaskToken::decode_kind(&[], TokenKind::Activity).is_err());
    }
}
