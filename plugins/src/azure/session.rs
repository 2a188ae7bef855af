//! One action's conversation with Azure Blob Storage: the client, the per-call timeout, a
//! cancel that drops the call in flight, and errors said without a key or a SAS.

use std::error::Error as _;
use std::future::Future;
use std::time::Duration;

use azure_core::StatusCode;
use azure_core::error::ErrorKind;
use azure_storage_blobs::prelude::{BlobServiceClient, ContainerClient};

use super::connection::Connection;
use super::settings::AzureSettings;
use crate::duration::{Dur, format_duration};
use crate::{ActionCtx, ActionError};

/// How long one call may take unless `timeout` says otherwise.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// A connected action.
pub(crate) struct Session {
    conn: Connection,
    client: BlobServiceClient,
    timeout: Duration,
}

impl Session {
    /// Resolves the settings (over the environment) and builds the client; nothing is sent yet.
    pub(crate) fn open(settings: &AzureSettings, timeout: Option<Dur>) -> Result<Session, ActionError> {
        let conn = settings.resolve().map_err(ActionError::Input)?;
        let client = conn.client().map_err(ActionError::Input)?;
        Ok(Session { conn, client, timeout: timeout.map_or(DEFAULT_TIMEOUT, Dur::get) })
    }

    /// A container of the account.
    pub(crate) fn container(&self, name: &str) -> ContainerClient {
        self.client.container_client(name)
    }

    /// Runs one call within the timeout; a cancel (step timeout, `phoenix cancel`, Ctrl-C)
    /// drops it at once. The outer error is the cancel or the timeout, the inner Azure's.
    pub(crate) async fn call<T>(
        &self,
        ctx: &ActionCtx,
        what: &str,
        work: impl Future<Output = azure_core::Result<T>>,
    ) -> Result<azure_core::Result<T>, ActionError> {
        tokio::select! {
            r = tokio::time::timeout(self.timeout, work) => r.map_err(|_| ActionError::Failed {
                message: format!("{what} {}: no answer within {}", self.at(), format_duration(self.timeout)),
                outputs: None,
                retryable: true,
                before_effect: false,
            }),
            _ = ctx.cancel.cancelled() => Err(ActionError::Cancelled(format!("{what} stopped"))),
        }
    }

    /// [`Session::call`] where any Azure error fails the step.
    pub(crate) async fn call_ok<T>(
        &self,
        ctx: &ActionCtx,
        what: &str,
        work: impl Future<Output = azure_core::Result<T>>,
    ) -> Result<T, ActionError> {
        self.call(ctx, what, work).await?.map_err(|e| self.failed(what, &e))
    }

    /// The step's error for an Azure error: what was being done, where, and what Azure said
    /// (or why it could not be reached). Client errors are not retried; the rest are.
    pub(crate) fn failed(&self, what: &str, e: &azure_core::Error) -> ActionError {
        let retryable = match status(e) {
            Some(s) => matches!(s, StatusCode::RequestTimeout | StatusCode::TooManyRequests) || u16::from(s) >= 500,
            None => !matches!(e.kind(), ErrorKind::Credential | ErrorKind::DataConversion),
        };
        let before_effect = matches!(e.kind(), ErrorKind::Io) && crate::action_error::never_connected(e);
        ActionError::Failed {
            message: format!("{what} {} failed: {}", self.at(), self.describe(e)),
            outputs: None,
            retryable,
            before_effect,
        }
    }

    fn at(&self) -> String {
        format!("(account {} at {})", self.conn.account, self.conn.endpoint)
    }

    /// Azure's error code and message when it answered, else the innermost cause (connection
    /// refused, DNS…), scrubbed of the credential.
    fn describe(&self, e: &azure_core::Error) -> String {
        let text = if let Some(http) = e.as_http_error() {
            let message = http.error_message().and_then(|m| m.lines().next()).unwrap_or_default().trim().to_string();
            match http.error_code() {
                Some(code) if !message.is_empty() => format!("{} {code}: {message}", u16::from(http.status())),
                Some(code) => format!("{} {code}", u16::from(http.status())),
                None => format!("HTTP {}", u16::from(http.status())),
            }
        } else {
            let mut text = e.to_string();
            let mut source = e.source();
            while let Some(s) = source {
                text = s.to_string();
                source = s.source();
            }
            text
        };
        self.conn.scrub(&text)
    }
}

/// The HTTP status Azure answered with, if it answered.
pub(crate) fn status(e: &azure_core::Error) -> Option<StatusCode> {
    match e.kind() {
        ErrorKind::HttpResponse { status, .. } => Some(*status),
        _ => None,
    }
}

/// Azure's error code (`ContainerNotFound`, `BlobNotFound`…), if it answered with one.
pub(crate) fn error_code(e: &azure_core::Error) -> Option<&str> {
    match e.kind() {
        ErrorKind::HttpResponse { error_code, .. } => error_code.as_deref(),
        _ => None,
    }
}
