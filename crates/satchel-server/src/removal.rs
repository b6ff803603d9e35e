//! Taking a message out of a mailbox, and giving its space back.
//!
//! An administrator's deletion (`satchel delete`, [`Service::delete_message`])
//! and retention's expiry (retention.rs, a page at a time) both take messages
//! out through the archive (`Archive::remove_member`, `remove_members`). A
//! deletion refuses while a legal hold covers the message (`Service::hold_covering`, hold.rs), records the
//! removal in the audit trail with its reason, takes the message out of the
//! mailbox (the membership log says so, and this node's search index drops
//! it before the call returns), and, for a deletion of a message no other
//! mailbox holds, rewrites its pack at once so its bytes leave the
//! repository. Offline repositories and laptops follow the membership log
//! at their next update (tombstones).

use crate::audit::action;
use crate::error::ServiceError;
use crate::service::{Caller, Result, Service};
use satchel_api as api;
use satchel_archive::MessageId;
use satchel_archive::archive::{GcOptions, GcReport};
use serde_json::json;
use std::time::Duration;

/// The longest reason kept.
const MAX_REASON: usize = 1000;

impl Service {
    /// Deletes message `id` from `mailbox` (an administrator, with a reason):
    /// 404 if it is not there, 409 naming the hold while one covers it.
    /// Audited, out of the mailbox and this node's search at once, and when
    /// no other mailbox holds it, its bytes out of the repository.
    pub fn delete_message(
        &self,
        caller: &Caller,
        mailbox: &str,
        id: &MessageId,
        reason: &str,
    ) -> Result<api::MessageDeleted> {
        caller.require_admin()?;
        self.require_member(mailbox, id)?;
        if let Some(hold) = self.hold_covering(mailbox, id)? {
            return Err(ServiceError::Conflict(format!(
                "message {id} in {mailbox} is under legal hold {hold:?}: \
                 it cannot be removed until the hold is released"
            )));
        }
        let reason = check_reason(reason)?;
        let still_in = self.archive.remove_member(mailbox, id)?;
        self.audit(
            caller,
            action::MESSAGE_DELETE,
            json!({ "mailbox": mailbox, "id": id, "reason": reason }),
        )?;
        tracing::info!(mailbox, %id, by = ?caller.user.name, "message deleted from a mailbox");
        let bytes_reclaimed = if still_in.is_empty() {
            self.erase_bytes(id)?
        } else {
            0
        };
        Ok(api::MessageDeleted {
            mailbox: mailbox.to_string(),
            id: *id,
            reason: reason.to_string(),
            still_in,
            bytes_reclaimed,
        })
    }

    /// 404 unless the mailbox exists and holds the message (also the
    /// console's check before it asks to confirm a deletion).
    pub(crate) fn require_member(&self, mailbox: &str, id: &MessageId) -> Result<()> {
        let cat = self.archive.catalog()?;
        cat.require_mailbox(mailbox)?;
        if cat.in_mailbox(mailbox, id)? {
            Ok(())
        } else {
            Err(ServiceError::NotFound(format!(
                "message {id} is not in mailbox {mailbox}"
            )))
        }
    }

    /// Rewrites the pack of a deleted message no mailbox holds, so its
    /// bytes leave the repository now; the bytes given back.
    fn erase_bytes(&self, id: &MessageId) -> Result<u64> {
        let opts = GcOptions {
            erase: Some(vec![*id]),
            ..GcOptions::default()
        };
        match self.archive.collect_garbage(&opts) {
            Ok(report) => Ok(report.bytes_reclaimed),
            Err(e) => {
                tracing::error!(error = %e, %id, "a deleted message's bytes were not reclaimed");
                Err(ServiceError::Internal(format!(
                    "message {id} was removed from the mailbox (and the audit trail says so), \
                     but its bytes could not be reclaimed yet: {e}; run `satchel repo gc --threshold 1`"
                )))
            }
        }
    }

    /// A garbage pass over every repository (administrators): messages no
    /// mailbox holds lose their row, packs mostly dead are rewritten, dead
    /// ones and orphan files deleted. Audited unless a dry run.
    pub fn collect_garbage(&self, caller: &Caller, req: &api::GcRequest) -> Result<api::GcReport> {
        caller.require_admin()?;
        let mut opts = GcOptions {
            dry_run: req.dry_run,
            ..GcOptions::default()
        };
        if let Some(secs) = req.orphan_grace_secs {
            opts.orphan_grace = Duration::from_secs(secs);
        }
        if let Some(t) = req.threshold {
            if !(0.0..=1.0).contains(&t) {
                return Err(ServiceError::BadRequest(format!(
                    "the threshold is a fraction from 0 to 1, not {t}"
                )));
            }
            opts.threshold = t;
        }
        let report = self.archive.collect_garbage(&opts).map_err(busy)?;
        if !req.dry_run {
            self.audit(caller, REPOSITORY_GC, json!(report_view(&report)))?;
        }
        Ok(report_view(&report))
    }
}

/// The audit action of a garbage pass.
pub const REPOSITORY_GC: &str = "repository.gc";

/// A pass already running elsewhere is a conflict, said so.
fn busy(e: satchel_archive::ArchiveError) -> ServiceError {
    match e {
        satchel_archive::ArchiveError::Exists(what) => {
            ServiceError::Conflict(format!("{what}: try again when it ends"))
        }
        other => other.into(),
    }
}

fn check_reason(reason: &str) -> Result<&str> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(ServiceError::BadRequest(
            "a removal needs a reason (--reason TEXT): it is kept in the audit trail".into(),
        ));
    }
    if reason.chars().count() > MAX_REASON {
        return Err(ServiceError::BadRequest(format!(
            "a reason has at most {MAX_REASON} characters"
        )));
    }
    Ok(reason)
}

fn report_view(r: &GcReport) -> api::GcReport {
    api::GcReport {
        dry_run: r.dry_run,
        messages_dropped: r.messages_dropped,
        packs_deleted: r.packs_deleted,
        packs_rewritten: r.packs_rewritten,
        orphans_deleted: r.orphans_deleted,
        bytes_reclaimed: r.bytes_reclaimed,
        packs_skipped: r.packs_skipped,
    }
}
