//! One error type for every service and its one mapping to a gRPC status with `google.rpc`
//! details (BadRequest field violations, ErrorInfo reason).
//!
//! Domain code returns [`Error`]; handlers only use `?`. Client-caused cases are variants;
//! anything else is `Internal`, logged with its cause chain and answered with a generic message.

use std::fmt;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

/// The `ErrorInfo.domain` of every error the platform returns.
pub const ERROR_DOMAIN: &str = "crm.example.com";

/// One offending field of a request: its path (e.g. `customer.contacts[1].phone`) and what is
/// wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Path of the field in the request message.
    pub field: String,
    /// What is wrong, short and lowercase.
    pub description: String,
}

/// Collects every offending field of a request before failing, so a client learns all of them
/// at once.
#[derive(Debug, Default)]
pub struct Violations(Vec<Violation>);

impl Violations {
    /// An empty collection.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `field` is invalid.
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(Violation {
            field: field.into(),
            description: description.into(),
        });
    }

    /// Keeps the value of a parse, or records its error under `field`.
    pub fn check<T, E: fmt::Display>(&mut self, field: &str, result: Result<T, E>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(e) => {
                self.add(field, e.to_string());
                None
            }
        }
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(())` when nothing was recorded, else [`Error::InvalidArgument`] with every violation.
    pub fn finish(self) -> Result<(), Error> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Error::InvalidArgument(self.0))
        }
    }

    /// Extends with violations of a nested message, prefixing their paths.
    pub fn nest(&mut self, prefix: &str, inner: Violations) {
        for v in inner.0 {
            self.add(format!("{prefix}.{}", v.field), v.description);
        }
    }
}

/// Every way a call can fail.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed; nothing was written.
    #[error("invalid argument: {}", describe(.0))]
    InvalidArgument(Vec<Violation>),
    /// The named resource does not exist (or is deleted).
    #[error("{kind} {id} not found")]
    NotFound {
        /// The kind of resource, e.g. "customer".
        kind: &'static str,
        /// Its id as given.
        id: String,
    },
    /// The resource was changed since the client read it.
    #[error("{kind} {id} was changed: version {given} is not the current {current}")]
    StaleVersion {
        /// The kind of resource.
        kind: &'static str,
        /// Its id.
        id: String,
        /// The version the client sent.
        given: i64,
        /// The stored version.
        current: i64,
    },
    /// The resource is not in a state that allows this; `reason` is a stable UPPER_SNAKE code.
    #[error("{message}")]
    FailedPrecondition {
        /// Stable machine-readable reason, e.g. `STAGE_TRANSITION_FORBIDDEN`.
        reason: &'static str,
        /// Human-readable message.
        message: String,
    },
    /// Something with the same identity exists already.
    #[error("{message}")]
    AlreadyExists {
        /// Stable machine-readable reason.
        reason: &'static str,
        /// Human-readable message.
        message: String,
    },
    /// The caller lacks a right; `permission` names it.
    #[error("permission denied: {permission}")]
    PermissionDenied {
        /// The missing right, e.g. `crm.customers.v1.CustomerService/DeleteCustomer`.
        permission: String,
    },
    /// No valid credentials.
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// Credentials refused for a while: too many failed attempts (`reason` says which lock).
    #[error("{message}")]
    Locked {
        /// Stable machine-readable reason, e.g. `LOGIN_LOCKED`.
        reason: &'static str,
        /// Human-readable message.
        message: String,
        /// When to try again.
        retry: std::time::Duration,
    },
    /// Too much at once: a limit or a full queue; try again after `retry`.
    #[error("{what}: retry in {} ms", .retry.as_millis().max(1))]
    Exhausted {
        /// What is exhausted.
        what: String,
        /// When to try again.
        retry: std::time::Duration,
    },
    /// A database failure.
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// Any other failure of ours.
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

fn describe(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(|v| format!("{}: {}", v.field, v.description))
        .collect::<Vec<_>>()
        .join("; ")
}

impl Error {
    /// An `InvalidArgument` error for a single field.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self::InvalidArgument(vec![Violation {
            field: field.into(),
            description: description.into(),
        }])
    }

    /// A `FailedPrecondition` error.
    pub fn precondition(reason: &'static str, message: impl Into<String>) -> Self {
        Self::FailedPrecondition {
            reason,
            message: message.into(),
        }
    }

    /// The name of the unique / foreign-key / check constraint a database error violated, so
    /// callers map violations by constraint name rather than by parsing messages.
    pub fn violated_constraint(&self) -> Option<&str> {
        match self {
            Self::Database(sqlx::Error::Database(db)) => db.constraint(),
            _ => None,
        }
    }

    /// This error, or `instead()` when it is the violation of `constraint` (a unique key taken,
    /// a one-open-at-a-time index): a constraint is mapped to its answer by name, in one line.
    pub fn or_when(self, constraint: &str, instead: impl FnOnce() -> Error) -> Error {
        if self.violated_constraint() == Some(constraint) {
            instead()
        } else {
            self
        }
    }

    /// The gRPC code of this error.
    pub fn code(&self) -> Code {
        match self {
            Self::InvalidArgument(_) => Code::InvalidArgument,
            Self::NotFound { .. } => Code::NotFound,
            Self::StaleVersion { .. } => Code::Aborted,
            Self::FailedPrecondition { .. } => Code::FailedPrecondition,
            Self::AlreadyExists { .. } => Code::AlreadyExists,
            Self::PermissionDenied { .. } => Code::PermissionDenied,
            Self::Unauthenticated(_) | Self::Locked { .. } => Code::Unauthenticated,
            Self::Exhausted { .. } => Code::ResourceExhausted,
            Self::Database(e) if is_unavailable(e) => Code::Unavailable,
            Self::Database(e) if is_bad_text(e) => Code::InvalidArgument,
            Self::Database(_) | Self::Internal(_) => Code::Internal,
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            Self::InvalidArgument(_) => "INVALID_ARGUMENT",
            Self::NotFound { .. } => "NOT_FOUND",
            Self::StaleVersion { .. } => "STALE_VERSION",
            Self::FailedPrecondition { reason, .. } | Self::AlreadyExists { reason, .. } => reason,
            Self::PermissionDenied { .. } => "PERMISSION_DENIED",
            Self::Unauthenticated(_) => "UNAUTHENTICATED",
            Self::Locked { reason, .. } => reason,
            Self::Exhausted { .. } => "RESOURCE_EXHAUSTED",
            Self::Database(e) if is_bad_text(e) => "INVALID_ARGUMENT",
            Self::Database(_) | Self::Internal(_) => "INTERNAL",
        }
    }
}

fn is_unavailable(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::PoolTimedOut) || crate::db::connection_lost(e)
}

/// A text the database refused (a NUL byte, an invalid encoding): the client's input, not a
/// fault of ours. Fields are checked at the edge by [`crate::text`]; this is the net under it.
fn is_bad_text(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("22021" | "22P05")))
}

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        let code = error.code();
        let mut details = ErrorDetails::new();
        let mut metadata = std::collections::HashMap::new();
        match &error {
            Error::InvalidArgument(violations) => {
                let fv: Vec<FieldViolation> = violations
                    .iter()
                    .map(|v| FieldViolation::new(v.field.clone(), v.description.clone()))
                    .collect();
                details.set_bad_request(fv);
            }
            Error::NotFound { kind, id } => {
                metadata.insert("resource".to_string(), format!("{kind}/{id}"));
            }
            Error::StaleVersion { current, .. } => {
                metadata.insert("current_version".to_string(), current.to_string());
            }
            Error::PermissionDenied { permission } => {
                metadata.insert("permission".to_string(), permission.clone());
            }
            Error::Locked { retry, .. } | Error::Exhausted { retry, .. } => {
                details.set_retry_info(Some(*retry));
            }
            Error::Database(e) if is_bad_text(e) => {
                tracing::warn!(error = %e, "a text the database refused reached it");
                details.set_bad_request(vec![FieldViolation::new(
                    "request",
                    "contains a NUL byte or characters the database cannot store",
                )]);
            }
            Error::Database(_) | Error::Internal(_) => {
                let chain = anyhow_chain(&error);
                tracing::error!(error.cause_chain = %chain, "internal error");
            }
            _ => {}
        }
        details.set_error_info(error.reason(), ERROR_DOMAIN, metadata);
        let message = match code {
            Code::Internal => "internal error".to_string(),
            Code::InvalidArgument if matches!(error, Error::Database(_)) => {
                "request: contains a NUL byte or characters the database cannot store".to_string()
            }
            Code::Unavailable => "service temporarily unavailable".to_string(),
            _ => error.to_string(),
        };
        Status::with_error_details(code, message, details)
    }
}

fn anyhow_chain(error: &Error) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = std::error::Error::source(error);
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    parts.join(": ")
}

/// Both results, or every violation of both: a client learns all its mistakes at once.
pub fn both<A, B>(a: Result<A, Error>, b: Result<B, Error>) -> Result<(A, B), Error> {
    match (a, b) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        (Err(Error::InvalidArgument(mut x)), Err(Error::InvalidArgument(y))) => {
            x.extend(y);
            Err(Error::InvalidArgument(x))
        }
        (Err(e), _) | (_, Err(e)) => Err(e),
    }
}

/// The result type of domain and store code.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_argument_carries_every_field() {
        let mut v = Violations::new();
        v.add("customer.display_name", "must not be empty");
        v.add("customer.region", "must not be empty");
        let status: Status = v.finish().unwrap_err().into();
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let fields: Vec<_> = details
            .bad_request()
            .unwrap()
            .field_violations
            .iter()
            .map(|f| f.field.as_str())
            .collect();
        assert_eq!(fields, ["customer.display_name", "customer.region"]);
        assert_eq!(details.error_info().unwrap().reason, "INVALID_ARGUMENT");
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let status: Status = Error::Internal(anyhow::anyhow!("secret connection string")).into();
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("secret"));
    }

    #[test]
    fn stale_version_is_aborted() {
        let e = Error::StaleVersion {
            kind: "customer",
            id: "x".into(),
            given: 1,
            current: 2,
        };
        assert_eq!(Status::from(e).code(), Code::Aborted);
    }
}
