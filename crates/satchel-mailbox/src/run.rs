//! An archive run: IMAP folder -> archive -> stub in the folder.
//!
//! For each folder the run selects the messages matching the policy (UID SEARCH,
//! stubs excluded), and for each batch:
//! 1. fetches them (BODY.PEEK[]: the \Seen flag is not changed);
//! 2. stores them byte-for-byte with [`Archive::add_server_messages`] (folder
//!    recorded; whatever the server holds is mail, header or not):
//!    when it returns they are durable (pack fsynced, catalog committed with
//!    synchronous=FULL); an id already archived is not stored twice;
//! 3. re-reads each from the archive ([`Archive::read`] checks the SHA-256
//!    against the id) and compares it with the fetched bytes;
//! 4. unless stubbing is off: APPENDs its stub (original flags and INTERNALDATE)
//!    unless the folder already holds a stub for that id, then marks exactly the
//!    original's UID \Deleted and removes exactly it with UID EXPUNGE (UIDPLUS).
//!
//! Killed anywhere, a re-run converges: an original still in the folder is found
//! again, its id is already archived (not stored twice), a stub already appended
//! for it is found by its `X-Satchel-Archived` header (no second stub), and only
//! the expunge is left to do. Nothing is expunged that is not durable, verified
//! and stubbed.
//!
//! The archive calls block (fsync, SQLite): they run under
//! `tokio::task::block_in_place`, so a run needs the multi-threaded runtime.

use crate::error::{Result, RunError};
use crate::imap::{Appendable, Fetched, Imap, ImapUrl, imap_date};
use crate::state::ImapState;
use crate::stub::{self, STUB_HEADER};
use satchel_api::{ArchiveFolderSummary, ArchivePolicy, ArchiveRunFailure, ArchiveRunSummary};
use satchel_archive::{Archive, BatchItem, ItemStatus, MessageId};
use std::collections::{HashMap, HashSet};
use std::time::Instant;

/// At most this many messages, and about this many bytes, per batch (one pack,
/// one fsync, one catalog transaction).
const BATCH_MESSAGES: usize = 200;
const BATCH_BYTES: u64 = 32 * 1024 * 1024;
/// At most this many failures are listed in the summary (all are counted).
const MAX_LISTED_FAILURES: usize = 200;

/// Where and as whom to log in.
#[derive(Clone)]
pub struct Account {
    pub url: String,
    pub user: String,
    pub password: String,
}

impl Account {
    /// The mailbox's IMAP settings from the catalog.
    pub fn of_mailbox(archive: &Archive, address: &str) -> Result<Account> {
        let cat = archive.catalog()?;
        let info = cat.mailbox(address)?;
        let password = cat.imap_password(address)?;
        match (info.imap_url, info.imap_user, password) {
            (Some(url), Some(user), Some(password)) => Ok(Account {
                url,
                user,
                password,
            }),
            _ => Err(RunError::Config(format!(
                "mailbox {address} has no IMAP server: add it with \
                 satchel mailbox add {address} --imap URL --imap-user U --imap-password-env VAR"
            ))),
        }
    }
}

/// The UID SEARCH criteria of a policy (without the stub exclusion).
pub fn policy_criteria(policy: &ArchivePolicy, today: chrono::NaiveDate) -> String {
    let mut parts = Vec::new();
    if let Some(days) = policy.older_than_days {
        let cutoff = today - chrono::Days::new(days as u64);
        parts.push(format!("BEFORE {}", imap_date(cutoff)));
    }
    if let Some(n) = policy.larger_than {
        parts.push(format!("LARGER {n}"));
    }
    if parts.is_empty() {
        parts.push("ALL".into());
    }
    parts.join(" ")
}

/// Checks a policy before anything connects.
pub fn validate(policy: &ArchivePolicy) -> Result<()> {
    for f in &policy.folders {
        if f.is_empty() || f.contains(['\r', '\n', '\0']) {
            return Err(RunError::Config(format!("folder name {f:?} is not valid")));
        }
    }
    if policy.all_folders && !policy.folders.is_empty() {
        return Err(RunError::Config(
            "give either folders or all folders, not both".into(),
        ));
    }
    Ok(())
}

/// Runs one archive run of `address`. `progress` is called after each batch
/// with the summary so far. On an error the summary so far is returned with it.
pub async fn run(
    archive: &Archive,
    address: &str,
    policy: &ArchivePolicy,
    job: i64,
    progress: &mut (dyn FnMut(&ArchiveRunSummary) + Send),
) -> std::result::Result<ArchiveRunSummary, (RunError, ArchiveRunSummary)> {
    let started = Instant::now();
    let mut summary = ArchiveRunSummary {
        job,
        mailbox: address.to_string(),
        outcome: "running".into(),
        policy: policy.clone(),
        ..Default::default()
    };
    let result = run_inner(archive, address, policy, &mut summary, progress).await;
    summary.duration_ms = started.elapsed().as_millis() as u64;
    match result {
        Ok(()) => {
            summary.outcome = "ok".into();
            Ok(summary)
        }
        Err(e) => {
            summary.outcome = "failed".into();
            summary.error = Some(e.to_string());
            Err((e, summary))
        }
    }
}

fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

async fn run_inner(
    archive: &Archive,
    address: &str,
    policy: &ArchivePolicy,
    summary: &mut ArchiveRunSummary,
    progress: &mut (dyn FnMut(&ArchiveRunSummary) + Send),
) -> Result<()> {
    validate(policy)?;
    let account = blocking(|| Account::of_mailbox(archive, address))?;
    let url = ImapUrl::parse(&account.url)?;
    let mut imap = Imap::connect(&url, &account.user, &account.password).await?;
    let folders = if policy.all_folders {
        imap.folders().await?
    } else if policy.folders.is_empty() {
        vec!["INBOX".to_string()]
    } else {
        policy.folders.clone()
    };
    // Every folder must exist before anything moves.
    for f in &folders {
        imap.select(f).await?;
    }
    let mut stub = policy.stub;
    if stub && !imap.has_capability("UIDPLUS") {
        stub = false;
        summary.notes.push(format!(
            "IMAP server {} does not offer UIDPLUS: archived without stubs and nothing expunged \
             (a plain EXPUNGE would remove every \\Deleted message of the folder)",
            imap.server()
        ));
    }
    let criteria = policy_criteria(policy, chrono::Utc::now().date_naive());
    for folder in &folders {
        // On an error the connection may be gone: no LOGOUT to wait on.
        archive_folder(
            archive, address, &mut imap, folder, &criteria, stub, summary, progress,
        )
        .await?;
    }
    imap.logout().await;
    Ok(())
}

/// One message of the folder as this run sees it.
struct Candidate {
    uid: u32,
    flags: Vec<String>,
    internal_date: Option<chrono::DateTime<chrono::FixedOffset>>,
    size: u64,
}

#[allow(clippy::too_many_arguments)]
async fn archive_folder(
    archive: &Archive,
    address: &str,
    imap: &mut Imap,
    folder: &str,
    criteria: &str,
    stub: bool,
    summary: &mut ArchiveRunSummary,
    progress: &mut (dyn FnMut(&ArchiveRunSummary) + Send),
) -> Result<()> {
    let sel = imap.select(folder).await?;
    let changed = blocking(|| -> Result<bool> {
        Ok(archive
            .catalog()?
            .imap_folder_validity(address, folder, sel.uidvalidity)?)
    })?;
    if changed {
        summary.notes.push(format!(
            "folder {folder}: UIDVALIDITY changed to {}: rescanned from scratch",
            sel.uidvalidity
        ));
    }
    let fi = summary.folders.len();
    summary.folders.push(ArchiveFolderSummary {
        folder: folder.to_string(),
        uidvalidity: sel.uidvalidity,
        uidvalidity_changed: changed,
        ..Default::default()
    });
    let known: HashMap<u32, MessageId> =
        blocking(|| -> Result<_> { Ok(archive.catalog()?.imap_known_uids(address, folder)?) })?;

    let has_stub = format!("HEADER {STUB_HEADER} \"\"");
    let stubs_matching = imap.uid_search(&format!("{criteria} {has_stub}")).await?;
    let uids = imap
        .uid_search(&format!("{criteria} NOT {has_stub}"))
        .await?;
    let n_stubs = stubs_matching.len() as u64;
    summary.examined += n_stubs + uids.len() as u64;
    summary.skipped += n_stubs;
    summary.skipped_stubs += n_stubs;
    summary.folders[fi].examined += n_stubs + uids.len() as u64;
    summary.folders[fi].skipped += n_stubs;

    // The ids this folder already has stubs for: a stub appended by a run that
    // was killed before its expunge is found here, and never appended twice.
    let mut stubbed_ids: HashSet<MessageId> = HashSet::new();
    if stub {
        let all_stubs = imap.uid_search(&has_stub).await?;
        for chunk in all_stubs.chunks(1000) {
            for (_, header) in imap.fetch_headers_fields(chunk, STUB_HEADER).await? {
                if let Some(id) = stub::stub_id(&header) {
                    stubbed_ids.insert(id);
                }
            }
        }
    }
    progress(summary);
    if uids.is_empty() {
        return Ok(());
    }

    // Flags, dates and sizes first: they decide the batches and what to skip.
    let mut candidates = Vec::with_capacity(uids.len());
    for chunk in uids.chunks(1000) {
        for m in imap.fetch_meta(chunk).await? {
            candidates.push(Candidate {
                uid: m.uid,
                flags: m.flags,
                internal_date: m.internal_date,
                size: m.size.unwrap_or(0) as u64,
            });
        }
    }
    candidates.sort_by_key(|c| c.uid);

    let mut batch: Vec<Candidate> = Vec::new();
    let mut batch_bytes = 0u64;
    let total = candidates.len();
    for (i, c) in candidates.into_iter().enumerate() {
        if c.flags.iter().any(|f| f.eq_ignore_ascii_case("\\Deleted")) {
            // A mail client is deleting it. Only finish what an interrupted run
            // of ours started (archived, stubbed, flagged, not yet expunged).
            match known.get(&c.uid) {
                Some(id)
                    if stub
                        && stubbed_ids.contains(id)
                        && blocking(|| archive.read(id)).is_ok() =>
                {
                    imap.expunge_uids(&[c.uid]).await?;
                    forget(archive, address, folder, &[c.uid])?;
                    summary.already_archived += 1;
                    summary.expunged += 1;
                    summary.folders[fi].already_archived += 1;
                    summary.folders[fi].expunged += 1;
                }
                _ => {
                    summary.skipped += 1;
                    summary.skipped_deleted += 1;
                    summary.folders[fi].skipped += 1;
                }
            }
            continue;
        }
        batch_bytes += c.size;
        batch.push(c);
        let last = i + 1 == total;
        if last || batch.len() >= BATCH_MESSAGES || batch_bytes >= BATCH_BYTES {
            let b = std::mem::take(&mut batch);
            batch_bytes = 0;
            archive_batch(
                archive,
                address,
                imap,
                folder,
                fi,
                b,
                &known,
                stub,
                &mut stubbed_ids,
                summary,
            )
            .await?;
            progress(summary);
        }
    }
    if !batch.is_empty() {
        archive_batch(
            archive,
            address,
            imap,
            folder,
            fi,
            batch,
            &known,
            stub,
            &mut stubbed_ids,
            summary,
        )
        .await?;
        progress(summary);
    }
    Ok(())
}

fn forget(archive: &Archive, address: &str, folder: &str, uids: &[u32]) -> Result<()> {
    blocking(|| -> Result<()> { Ok(archive.catalog()?.imap_forget_uids(address, folder, uids)?) })
}

fn fail(summary: &mut ArchiveRunSummary, fi: usize, folder: &str, uid: u32, reason: String) {
    summary.failed += 1;
    summary.folders[fi].failed += 1;
    if summary.failures.len() < MAX_LISTED_FAILURES {
        summary.failures.push(ArchiveRunFailure {
            folder: folder.to_string(),
            uid,
            reason,
        });
    }
}

#[allow(clippy::too_many_arguments)]
async fn archive_batch(
    archive: &Archive,
    address: &str,
    imap: &mut Imap,
    folder: &str,
    fi: usize,
    batch: Vec<Candidate>,
    known: &HashMap<u32, MessageId>,
    stub: bool,
    stubbed_ids: &mut HashSet<MessageId>,
    summary: &mut ArchiveRunSummary,
) -> Result<()> {
    // UIDs already known to hold an archived message need no download when no
    // stub is wanted; with stubs, their bytes come (verified) from the archive.
    let member = |id: &MessageId| -> Result<bool> {
        blocking(|| -> Result<bool> { Ok(archive.catalog()?.in_mailbox(address, id)?) })
    };
    let mut ready: Vec<(Candidate, MessageId, Vec<u8>)> = Vec::new();
    let mut to_fetch: Vec<u32> = Vec::new();
    let mut by_uid: HashMap<u32, Candidate> = HashMap::new();
    for c in batch {
        match known.get(&c.uid) {
            Some(id) if member(id)? => {
                summary.already_archived += 1;
                summary.folders[fi].already_archived += 1;
                if stub {
                    match blocking(|| archive.read(id)) {
                        Ok(raw) => ready.push((c, *id, raw)),
                        Err(e) => fail(
                            summary,
                            fi,
                            folder,
                            c.uid,
                            format!("archived copy unreadable, left in place: {e}"),
                        ),
                    }
                }
            }
            _ => {
                to_fetch.push(c.uid);
                by_uid.insert(c.uid, c);
            }
        }
    }

    if !to_fetch.is_empty() {
        let fetched: Vec<Fetched> = imap.fetch_messages(&to_fetch).await?;
        let got: HashSet<u32> = fetched.iter().map(|f| f.uid).collect();
        for uid in &to_fetch {
            if !got.contains(uid) {
                // Expunged by someone else meanwhile: nothing to do, nothing lost.
                by_uid.remove(uid);
                summary.notes.push(format!(
                    "folder {folder}: UID {uid} disappeared during the run"
                ));
            }
        }
        let mut items = Vec::new();
        let mut kept: Vec<Fetched> = Vec::new();
        for f in fetched {
            if stub::is_stub(&f.raw) {
                summary.skipped += 1;
                summary.skipped_stubs += 1;
                summary.folders[fi].skipped += 1;
                by_uid.remove(&f.uid);
                continue;
            }
            items.push(BatchItem {
                origin: format!("imap:{folder}/{}", f.uid),
                folder: folder.to_string(),
                raw: f.raw.clone(),
            });
            kept.push(f);
        }
        let outcomes = blocking(|| archive.add_server_messages(address, items))?;
        let mut record = Vec::new();
        for (f, o) in kept.into_iter().zip(outcomes) {
            let Some(c) = by_uid.remove(&f.uid) else {
                continue;
            };
            match (o.status, o.id) {
                (ItemStatus::Imported, Some(id)) => {
                    summary.archived += 1;
                    summary.bytes += f.raw.len() as u64;
                    summary.folders[fi].archived += 1;
                    record.push((f.uid, id));
                    ready.push((c, id, f.raw));
                }
                (ItemStatus::Duplicate, Some(id)) => {
                    summary.already_archived += 1;
                    summary.folders[fi].already_archived += 1;
                    record.push((f.uid, id));
                    ready.push((c, id, f.raw));
                }
                (_, _) => {
                    let reason = o.reason.unwrap_or_else(|| "not archived".into());
                    fail(
                        summary,
                        fi,
                        folder,
                        f.uid,
                        format!("{reason}; left in place"),
                    );
                }
            }
        }
        blocking(|| -> Result<()> {
            Ok(archive
                .catalog()?
                .imap_record_uids(address, folder, &record)?)
        })?;
    }

    if !stub || ready.is_empty() {
        return Ok(());
    }
    // Verify, stub (one MULTIAPPEND for the batch), expunge.
    let mut expunge = Vec::new();
    let mut stubs = Vec::new();
    for (c, id, raw) in ready {
        let verified = blocking(|| archive.read(&id));
        match verified {
            Ok(copy) if copy == raw => {}
            Ok(_) => {
                fail(
                    summary,
                    fi,
                    folder,
                    c.uid,
                    format!("archived copy of {id} differs from the mailbox's; left in place"),
                );
                continue;
            }
            Err(e) => {
                fail(
                    summary,
                    fi,
                    folder,
                    c.uid,
                    format!("archived copy of {id} failed verification ({e}); left in place"),
                );
                continue;
            }
        }
        if stubbed_ids.insert(id) {
            stubs.push(Appendable {
                flags: c
                    .flags
                    .iter()
                    .filter(|f| !f.eq_ignore_ascii_case("\\Deleted"))
                    .cloned()
                    .collect(),
                internal_date: c.internal_date,
                raw: stub::build_stub(address, &id, &raw),
            });
        }
        expunge.push(c.uid);
    }
    if let Err(e) = imap.append_many(folder, &stubs).await {
        // None of them was added (MULTIAPPEND is all or nothing).
        for s in &stubs {
            if let Some(id) = stub::stub_id(&s.raw) {
                stubbed_ids.remove(&id);
            }
        }
        return Err(e);
    }
    summary.stubbed += stubs.len() as u64;
    summary.folders[fi].stubbed += stubs.len() as u64;
    imap.expunge_uids(&expunge).await?;
    forget(archive, address, folder, &expunge)?;
    summary.expunged += expunge.len() as u64;
    summary.folders[fi].expunged += expunge.len() as u64;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn criteria() {
        let today = chrono::NaiveDate::from_ymd_opt(2024, 3, 10).unwrap();
        let mut p = ArchivePolicy::default();
        assert_eq!(policy_criteria(&p, today), "ALL");
        p.older_than_days = Some(30);
        assert_eq!(policy_criteria(&p, today), "BEFORE 9-Feb-2024");
        p.larger_than = Some(100000);
        assert_eq!(
            policy_criteria(&p, today),
            "BEFORE 9-Feb-2024 LARGER 100000"
        );
    }
}
