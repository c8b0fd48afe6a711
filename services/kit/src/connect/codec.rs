//! Messages between their JSON, their bytes and their gRPC frame.

use bytes::{BufMut, Bytes, BytesMut};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use prost_reflect::{DeserializeOptions, DynamicMessage, MethodDescriptor};
use tonic::{Code, body::Body};

use super::error::ConnectError;

pub(super) async fn read_body(body: Body, limit: usize) -> Result<Bytes, ConnectError> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large(limit)),
        Err(e) => Err(ConnectError::new(
            Code::Cancelled,
            format!("the request body could not be read: {e}"),
        )),
    }
}

pub(super) fn too_large(limit: usize) -> ConnectError {
    ConnectError::new(
        Code::ResourceExhausted,
        format!("the request body is over the limit of {limit} bytes"),
    )
}

/// A request message from its JSON (unknown fields refused, naming them).
pub(super) fn json_to_proto(method: &MethodDescriptor, body: &[u8]) -> Result<Bytes, ConnectError> {
    let input = method.input();
    let text: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    let mut deserializer = serde_json::Deserializer::from_slice(text);
    let message = DynamicMessage::deserialize_with_options(
        input.clone(),
        &mut deserializer,
        &DeserializeOptions::new().deny_unknown_fields(true),
    )
    .and_then(|m| deserializer.end().map(|()| m))
    .map_err(|e| {
        ConnectError::new(
            Code::InvalidArgument,
            format!("the body is not a {} in JSON: {e}", input.full_name()),
        )
    })?;
    Ok(prost::Message::encode_to_vec(&message).into())
}

/// A response message as JSON (the proto3 JSON mapping: lowerCamelCase names, 64-bit integers
/// as strings, enums by name, default values left out).
pub(super) fn proto_to_json(
    method: &MethodDescriptor,
    message: Bytes,
) -> Result<Bytes, ConnectError> {
    let message = DynamicMessage::decode(method.output(), message).map_err(|e| {
        ConnectError::new(
            Code::Internal,
            format!("the service's answer does not decode: {e}"),
        )
    })?;
    serde_json::to_vec(&message).map(Bytes::from).map_err(|e| {
        ConnectError::new(
            Code::Internal,
            format!("the answer cannot be written as JSON: {e}"),
        )
    })
}

/// A message in a gRPC frame (uncompressed).
pub(super) fn frame(message: &[u8]) -> Bytes {
    let mut framed = BytesMut::with_capacity(message.len() + 5);
    framed.put_u8(0);
    framed.put_u32(message.len() as u32);
    framed.put_slice(message);
    framed.freeze()
}

/// The one message of a unary gRPC answer.
pub(super) fn unframe(data: &Bytes) -> Result<Bytes, ConnectError> {
    let broken = || ConnectError::new(Code::Internal, "the service's answer is not one message");
    if data.len() < 5 || data[0] != 0 {
        return Err(broken());
    }
    let len = u32::from_be_bytes([data[1], data[2], data[3], data[4]]) as usize;
    if data.len() != 5 + len {
        return Err(broken());
    }
    Ok(data.slice(5..))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connect::Front;

    #[test]
    fn frames_round_trip_and_broken_ones_are_refused() {
        let framed = frame(b"abc");
        assert_eq!(&framed[..], &[0, 0, 0, 0, 3, b'a', b'b', b'c']);
        assert_eq!(&unframe(&framed).unwrap()[..], b"abc");
        for broken in [&b""[..], &[0, 0, 0, 0, 4, 1][..], &[1, 0, 0, 0, 0][..]] {
            assert!(unframe(&Bytes::copy_from_slice(broken)).is_err());
        }
    }

    #[test]
    fn json_is_checked_against_the_request_message() {
        let front = Front::new(1024).unwrap();
        let get = front
            .method("/crm.customers.v1.CustomerService/GetCustomer")
            .unwrap();
        assert!(json_to_proto(&get, br#"{"id":"c-1"}"#).is_ok());
        assert!(json_to_proto(&get, b"  ").is_ok());
        for (body, named) in [
            (&br#"{"id":"c-1","nope":1}"#[..], "nope"),
            (&br#"{"id":5}"#[..], "string"),
            (&br#"{"id":"c-1"} trailing"#[..], "trailing"),
            (&br#"{"id":"#[..], "EOF"),
        ] {
            let error = json_to_proto(&get, body).unwrap_err();
            assert_eq!(error.code, Code::InvalidArgument);
            assert!(
                error.message.contains(named) || error.message.contains("expected"),
                "{}",
                error.message
            );
        }
    }

    /// Any JSON value, nested a little.
    fn json() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(serde_json::Value::from),
            ".{0,12}".prop_map(serde_json::Value::from),
            prop::sample::select(vec![
                "TIER_CORE",
                "1e999",
                "-1",
                "2026-13-45T99:00:00Z",
                "1.5s"
            ])
            .prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(3, 32, 6, |inner| {
            let names = prop::sample::select(vec![
                "id",
                "requestId",
                "customer",
                "displayName",
                "contacts",
                "phone",
                "page",
                "pageSize",
                "filter",
                "tier",
                "updateMask",
                "version",
                "ticket",
                "transition",
                "quantity",
                "amount",
                "units",
                "nanos",
                "from",
                "to",
                "nope",
            ]);
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                prop::collection::btree_map(names, inner, 0..5).prop_map(|m| {
                    serde_json::Value::Object(
                        m.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
                    )
                }),
            ]
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 64, ..Default::default() })]

        /// Whatever JSON (or bytes) a client sends to whatever unary method: the request
        /// message or a clear INVALID_ARGUMENT, never a panic.
        #[test]
        fn any_json_to_any_method_is_a_message_or_a_clear_refusal(
            value in json(),
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
        ) {
            let front = Front::new(1 << 20).unwrap();
            let text = value.to_string();
            for service in front.pool.services().filter(|s| s.full_name().starts_with("crm.")) {
                for method in service.methods().filter(|m| !m.is_client_streaming()) {
                    for body in [text.as_bytes(), bytes.as_slice()] {
                        if let Err(e) = json_to_proto(&method, body) {
                            proptest::prop_assert_eq!(e.code, Code::InvalidArgument);
                            proptest::prop_assert!(e.message.contains(method.input().full_name()));
                        }
                    }
                }
            }
        }
    }
}
