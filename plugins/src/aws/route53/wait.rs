//! Waiting for a Route 53 change to reach every name server.

use std::time::{Duration, Instant};

use aws_sdk_route53::types::ChangeStatus;

use crate::aws::{call, describe};
use crate::duration::format_duration;
use crate::{ActionCtx, ActionError, Stream};

/// The first pause between GetChange calls; it doubles up to [`MAX_POLL`].
const FIRST_POLL: Duration = Duration::from_secs(1);
const MAX_POLL: Duration = Duration::from_secs(10);

/// Polls GetChange until INSYNC or `limit`: the last status, and the last error if the last
/// poll failed. A failed poll is tried again at the next one; a cancel stops at once.
pub(super) async fn wait_insync(
    ctx: &ActionCtx,
    client: &aws_sdk_route53::Client,
    change_id: &str,
    limit: Duration,
) -> Result<(ChangeStatus, Option<String>), ActionError> {
    let deadline = Instant::now() + limit;
    let (mut pause, mut status, mut error) = (FIRST_POLL, ChangeStatus::Pending, None);
    ctx.log(Stream::Info, format!("waiting up to {} for change {change_id} to be INSYNC", format_duration(limit)));
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok((status, error));
        }
        tokio::select! {
            _ = tokio::time::sleep(pause.min(left)) => {}
            _ = ctx.cancel.cancelled() => return Err(ActionError::Cancelled(format!("stopped waiting for change {change_id}"))),
        }
        match call(ctx, "waiting for the change", client.get_change().id(change_id).send()).await? {
            Ok(out) => {
                error = None;
                status = out.change_info.map_or(ChangeStatus::Pending, |i| i.status);
                if status == ChangeStatus::Insync {
                    return Ok((status, None));
                }
            }
            Err(e) => {
                let e = describe(&e);
                ctx.log(Stream::Info, format!("GetChange {change_id} failed: {e}; trying again"));
                error = Some(e);
            }
        }
        pause = (pause * 2).min(MAX_POLL);
    }
}
