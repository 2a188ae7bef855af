//! Actions that talk to AWS through the official SDK (aws-config, aws-sdk-*).
//!
//! Every AWS action takes the same connection settings ([`AwsSettings`]), flattened into its
//! `with`; what is not set comes from the standard environment (`AWS_REGION`, `AWS_PROFILE`,
//! `AWS_ACCESS_KEY_ID`…, `AWS_ENDPOINT_URL`) exactly as the AWS CLI reads it.

mod eks;
mod health_events;
mod reachable;
mod route53;
mod s3;
mod secrets_manager;
mod settings;
mod traced;

pub use eks::{EksNodegroups, EksNodegroupsInput};
pub use health_events::{HealthEvents, HealthEventsInput};
pub use reachable::{Reachable, ReachableInput};
pub use route53::{Route53Delete, Route53DeleteInput, Route53Get, Route53GetInput, Route53Upsert, Route53UpsertInput};
pub use s3::{S3Delete, S3DeleteInput, S3Get, S3GetInput, S3List, S3ListInput, S3Put, S3PutInput, S3Settings};
pub use secrets_manager::SecretsManagerRef;
pub use settings::AwsSettings;

pub(crate) use s3::MultipartUpload;

use std::error::Error as _;
use std::future::Future;

use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};

use crate::{ActionCtx, ActionError};

/// Runs one SDK call; a cancel (step timeout, `phoenix cancel`, Ctrl-C) drops it at once.
async fn call<T>(ctx: &ActionCtx, what: &str, work: impl Future<Output = T>) -> Result<T, ActionError> {
    tokio::select! {
        r = work => Ok(r),
        _ = ctx.cancel.cancelled() => Err(ActionError::Cancelled(format!("{what} stopped"))),
    }
}

/// How an SDK call went wrong, for people: the service's code and message when it answered,
/// otherwise the innermost cause (connection refused, timeout, no credentials…).
pub(crate) fn describe<E, R>(e: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    match e {
        SdkError::ServiceError(s) => {
            let err = s.err();
            match (err.code(), err.message()) {
                (Some(code), Some(msg)) => format!("{code}: {msg}"),
                (Some(code), None) => code.to_string(),
                _ => err.to_string(),
            }
        }
        SdkError::TimeoutError(_) => "no answer within the timeout".to_string(),
        other => {
            let mut text = other.to_string();
            let mut source = other.source();
            while let Some(s) = source {
                text = s.to_string();
                source = s.source();
            }
            text
        }
    }
}

/// Whether the service itself answered (with an error): the endpoint is reachable.
fn answered<E, R>(e: &SdkError<E, R>) -> bool {
    matches!(e, SdkError::ServiceError(_))
}
