//! Connect errors: the code's name, its HTTP status and the JSON body with the details.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use http_body_util::Full;
use prost_reflect::{DescriptorPool, DynamicMessage};
use tonic::{Code, body::Body};

/// A Connect error: its code, message and `google.rpc` details.
#[derive(Debug)]
pub(super) struct ConnectError {
    pub(super) code: Code,
    pub(super) message: String,
    pub(super) http: Option<StatusCode>,
    details: Vec<serde_json::Value>,
    /// The service's answer headers, if it got that far (boxed: errors travel by value).
    headers: Option<Box<HeaderMap>>,
}

impl ConnectError {
    pub(super) fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            http: None,
            details: Vec::new(),
            headers: None,
        }
    }

    pub(super) fn with_http(mut self, status: StatusCode) -> Self {
        self.http = Some(status);
        self
    }

    pub(super) fn with_headers(mut self, headers: HeaderMap) -> Self {
        self.headers = Some(Box::new(headers));
        self
    }

    /// A gRPC status with its details (`grpc-status-details-bin`), each detail as Connect
    /// writes it: its type name, its bytes in base64 and, where its type is known, its JSON.
    pub(super) fn from_status(status: &tonic::Status, pool: &DescriptorPool) -> Self {
        // a tonic server whose deadline passed answers CANCELLED "Timeout expired"
        let code = match status.code() {
            Code::Cancelled if status.message() == "Timeout expired" => Code::DeadlineExceeded,
            code => code,
        };
        let mut error = Self::new(code, status.message());
        if status.details().is_empty() {
            return error;
        }
        let Ok(rich) = <tonic_types::pb::Status as prost::Message>::decode(status.details()) else {
            return error;
        };
        for any in rich.details {
            let name = any.type_url.rsplit('/').next().unwrap_or("").to_string();
            let mut detail = serde_json::json!({
                "type": name,
                "value": base64::Engine::encode(
                    &base64::engine::general_purpose::STANDARD_NO_PAD,
                    &any.value
                ),
            });
            if let Some(descriptor) = pool.get_message_by_name(&name)
                && let Ok(message) = DynamicMessage::decode(descriptor, any.value.as_slice())
                && let Ok(debug) = serde_json::to_value(&message)
            {
                detail["debug"] = debug;
            }
            error.details.push(detail);
        }
        error
    }

    pub(super) fn into_response(self) -> Response<Body> {
        let mut body = serde_json::json!({ "code": code_name(self.code) });
        if !self.message.is_empty() {
            body["message"] = self.message.into();
        }
        if !self.details.is_empty() {
            body["details"] = self.details.into();
        }
        let mut response = Response::new(Body::new(Full::new(Bytes::from(body.to_string()))));
        *response.status_mut() = self.http.unwrap_or_else(|| http_status(self.code));
        if let Some(headers) = self.headers {
            *response.headers_mut() = *headers;
        }
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }
}

/// A code's name in Connect (`invalid_argument`).
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "ok",
        Code::Cancelled => "canceled",
        Code::Unknown => "unknown",
        Code::InvalidArgument => "invalid_argument",
        Code::DeadlineExceeded => "deadline_exceeded",
        Code::NotFound => "not_found",
        Code::AlreadyExists => "already_exists",
        Code::PermissionDenied => "permission_denied",
        Code::ResourceExhausted => "resource_exhausted",
        Code::FailedPrecondition => "failed_precondition",
        Code::Aborted => "aborted",
        Code::OutOfRange => "out_of_range",
        Code::Unimplemented => "unimplemented",
        Code::Internal => "internal",
        Code::Unavailable => "unavailable",
        Code::DataLoss => "data_loss",
        Code::Unauthenticated => "unauthenticated",
    }
}

/// The HTTP status Connect gives a code.
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::Cancelled => StatusCode::from_u16(499).expect("499"),
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            StatusCode::BAD_REQUEST
        }
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_carry_connect_codes_and_http_statuses() {
        assert_eq!(code_name(Code::InvalidArgument), "invalid_argument");
        assert_eq!(code_name(Code::Cancelled), "canceled");
        assert_eq!(http_status(Code::NotFound), StatusCode::NOT_FOUND);
        assert_eq!(
            http_status(Code::ResourceExhausted),
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(http_status(Code::Unauthenticated), StatusCode::UNAUTHORIZED);
    }
}
