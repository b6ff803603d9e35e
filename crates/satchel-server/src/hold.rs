//! Legal holds (issue 11 point 2; docs/compliance.md): a named hold covers
//! every message of its mailboxes that matches its query (the search
//! language; no query: every message), including mail archived after it was
//! placed. Coverage is evaluated when something would remove a message
//! (retention expiry, deletion), never copied as ids when the hold is
//! placed, so it always follows the mailboxes as they are.
//!
//! Its tables (`holds`, `hold_mailboxes`) are the service's component `hold`
//! in the archive's catalog (SQLite or PostgreSQL), with their own
//! migrations ([`migrate`]). A released hold's rows are deleted; the audit
//! trail keeps who placed and released it.

use crate::audit::action;
use crate::error::ServiceError;
use crate::service::{Caller, Service};
use satchel_api as api;
use satchel_archive::catalog::{Catalog, Db, Migration};
use satchel_archive::{MessageId, UserInfo, params};
use serde_json::json;
use std::collections::HashSet;

type Result<T, E = ServiceError> = std::result::Result<T, E>;

/// The component's name in `schema_versions`.
pub const COMPONENT: &str = "hold";

const V1: &str = r#"
CREATE TABLE IF NOT EXISTS holds(
  name TEXT PRIMARY KEY,
  query TEXT,
  placed_by TEXT NOT NULL,
  placed INTEGER NOT NULL
);
-- No cascade from mailboxes: a held mailbox cannot silently lose its hold.
CREATE TABLE IF NOT EXISTS hold_mailboxes(
  hold TEXT NOT NULL REFERENCES holds(name) ON DELETE CASCADE,
  mailbox TEXT NOT NULL REFERENCES mailboxes(address),
  PRIMARY KEY(hold, mailbox)
);
CREATE INDEX IF NOT EXISTS hold_mailboxes_mailbox ON hold_mailboxes(mailbox);
"#;

const PG_V1: &str = r#"
CREATE TABLE IF NOT EXISTS holds(
  name TEXT COLLATE "C" PRIMARY KEY,
  query TEXT COLLATE "C",
  placed_by TEXT COLLATE "C" NOT NULL,
  placed BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS hold_mailboxes(
  hold TEXT COLLATE "C" NOT NULL REFERENCES holds(name) ON DELETE CASCADE,
  mailbox TEXT COLLATE "C" NOT NULL REFERENCES mailboxes(address),
  PRIMARY KEY(hold, mailbox)
);
CREATE INDEX IF NOT EXISTS hold_mailboxes_mailbox ON hold_mailboxes(mailbox);
"#;

/// Creates or upgrades the hold tables; run once when the service opens.
pub fn migrate(cat: &Catalog) -> satchel_archive::Result<()> {
    cat.migrate_component(
        COMPONENT,
        &[Migration {
            sqlite: V1,
            postgres: PG_V1,
        }],
    )
}

/// A hold as stored.
#[derive(Clone, Debug)]
struct HoldRow {
    name: String,
    query: Option<String>,
    placed_by: String,
    placed: i64,
    mailboxes: Vec<String>,
}

/// Every hold (or the one named), by name.
fn rows(db: &Db, name: Option<&str>) -> Result<Vec<HoldRow>> {
    let holds = db.query(
        "SELECT name, query, placed_by, placed FROM holds
         WHERE CAST($1 AS TEXT) IS NULL OR name = $1 ORDER BY name",
        params![name],
    )?;
    holds
        .iter()
        .map(|r| {
            let name: String = r.get(0)?;
            let mailboxes = db
                .query(
                    "SELECT mailbox FROM hold_mailboxes WHERE hold = $1 ORDER BY mailbox",
                    params![&name],
                )?
                .iter()
                .map(|m| m.get(0))
                .collect::<satchel_archive::Result<_>>()?;
            Ok(HoldRow {
                name,
                query: r.get(1)?,
                placed_by: r.get(2)?,
                placed: r.get(3)?,
                mailboxes,
            })
        })
        .collect()
}

/// The holds on `mailbox`: (name, query).
fn on_mailbox(db: &Db, mailbox: &str) -> Result<Vec<(String, Option<String>)>> {
    db.query(
        "SELECT h.name, h.query FROM holds h JOIN hold_mailboxes m ON m.hold = h.name
         WHERE m.mailbox = $1 ORDER BY h.name",
        params![mailbox],
    )?
    .iter()
    .map(|r| Ok((r.get(0)?, r.get(1)?)))
    .collect()
}

/// What the holds on one mailbox cover, each hold's query evaluated once:
/// checking a batch of messages costs one search per hold with a query, not
/// one per message.
#[derive(Debug, Default)]
pub struct Coverage {
    /// (hold, the ids its query matches; None: every message).
    holds: Vec<(String, Option<HashSet<MessageId>>)>,
}

impl Coverage {
    /// The first hold (by name) that covers `id`.
    pub fn covering(&self, id: &MessageId) -> Option<&str> {
        self.holds
            .iter()
            .find(|(_, ids)| ids.as_ref().is_none_or(|s| s.contains(id)))
            .map(|(name, _)| name.as_str())
    }

    /// No hold on the mailbox.
    pub fn is_empty(&self) -> bool {
        self.holds.is_empty()
    }

    /// The names of the holds evaluated.
    pub fn names(&self) -> Vec<&str> {
        self.holds.iter().map(|(n, _)| n.as_str()).collect()
    }
}

/// The searcher a hold's query runs as: it sees every mailbox.
fn hold_searcher() -> UserInfo {
    UserInfo::internal("hold", true)
}

/// A hold's name: 1-64 letters, digits, '-', '_' or '.' (as user names).
fn check_name(name: &str) -> Result<()> {
    crate::service::validate_name("hold name", name)
}

fn no_hold(name: &str) -> ServiceError {
    ServiceError::NotFound(format!("no hold named {name}"))
}

impl Service {
    /// The hook every removal asks (retention expiry, deletion): the name
    /// of a hold covering `id` in `mailbox`, if any. One message: for a
    /// batch, [`Service::holds_over`] evaluates each query once.
    pub fn hold_covering(&self, mailbox: &str, id: &MessageId) -> Result<Option<String>> {
        Ok(self.holds_over(mailbox)?.covering(id).map(str::to_string))
    }

    /// Evaluates every hold on `mailbox` once (its query over the mailbox).
    pub fn holds_over(&self, mailbox: &str) -> Result<Coverage> {
        let holds = on_mailbox(self.archive.catalog()?.db(), mailbox)?;
        let mut coverage = Coverage::default();
        for (name, query) in holds {
            let ids = match query {
                Some(q) => Some(self.matching(&q, mailbox)?.into_iter().collect()),
                None => None,
            };
            coverage.holds.push((name, ids));
        }
        Ok(coverage)
    }

    /// The messages of `mailbox` matching `query`, for a hold.
    fn matching(&self, query: &str, mailbox: &str) -> Result<Vec<MessageId>> {
        Ok(self
            .archive
            .matching_ids(&hold_searcher(), query, mailbox)?)
    }

    /// Places a hold (administrators): its mailboxes must exist and its
    /// query must parse.
    pub fn add_hold(&self, caller: &Caller, new: &api::NewHold) -> Result<api::Hold> {
        caller.require_admin()?;
        check_name(&new.name)?;
        let mut mailboxes = new.mailboxes.clone();
        mailboxes.sort();
        mailboxes.dedup();
        if mailboxes.is_empty() {
            return Err(ServiceError::BadRequest(
                "a hold needs at least one mailbox (--mailbox ADDRESS)".into(),
            ));
        }
        let query = new
            .query
            .as_deref()
            .map(str::trim)
            .filter(|q| !q.is_empty());
        {
            let cat = self.archive.catalog()?;
            for mb in &mailboxes {
                cat.require_mailbox(mb)?;
            }
        }
        if let Some(q) = query {
            // A query that does not parse is refused now, not at removal time.
            self.matching(q, &mailboxes[0])?;
        }
        let placed = satchel_archive::catalog::now();
        let cat = self.archive.catalog()?;
        insert(
            cat.db(),
            &new.name,
            query,
            &caller.user.name,
            placed,
            &mailboxes,
        )?;
        crate::audit::note(
            &cat,
            caller,
            action::HOLD_ADD,
            json!({ "hold": new.name, "mailboxes": mailboxes, "query": query }),
        )?;
        let row = one(cat.db(), &new.name)?;
        drop(cat);
        tracing::info!(hold = %new.name, by = %caller.user.name, "hold placed");
        self.hold_view(row)
    }

    /// Every hold, with what each covers now (administrators).
    pub fn holds(&self, caller: &Caller) -> Result<Vec<api::Hold>> {
        caller.require_admin()?;
        let all = rows(self.archive.catalog()?.db(), None)?;
        all.into_iter().map(|h| self.hold_view(h)).collect()
    }

    /// One hold (administrators).
    pub fn hold(&self, caller: &Caller, name: &str) -> Result<api::Hold> {
        caller.require_admin()?;
        let row = one(self.archive.catalog()?.db(), name)?;
        self.hold_view(row)
    }

    /// Releases a hold (administrators): what it covered expires at the
    /// next retention apply unless another hold covers it. Returns the hold
    /// as it was.
    pub fn release_hold(&self, caller: &Caller, name: &str) -> Result<api::Hold> {
        caller.require_admin()?;
        let view = self.hold(caller, name)?;
        let cat = self.archive.catalog()?;
        let n = cat
            .db()
            .execute("DELETE FROM holds WHERE name = $1", params![name])?;
        if n == 0 {
            return Err(no_hold(name));
        }
        crate::audit::note(
            &cat,
            caller,
            action::HOLD_RELEASE,
            json!({ "hold": name, "mailboxes": view.mailboxes, "query": view.query }),
        )?;
        tracing::info!(hold = %name, by = %caller.user.name, "hold released");
        Ok(view)
    }

    fn hold_view(&self, h: HoldRow) -> Result<api::Hold> {
        let mut messages = 0u64;
        for mb in &h.mailboxes {
            messages += match &h.query {
                Some(q) => self.matching(q, mb)?.len() as u64,
                None => self.archive.catalog()?.mailbox(mb)?.messages,
            };
        }
        Ok(api::Hold {
            name: h.name,
            mailboxes: h.mailboxes,
            query: h.query,
            placed_by: h.placed_by,
            placed: crate::jobs::unix_time(h.placed).unwrap_or_default(),
            messages,
        })
    }
}

fn one(db: &Db, name: &str) -> Result<HoldRow> {
    rows(db, Some(name))?
        .into_iter()
        .next()
        .ok_or_else(|| no_hold(name))
}

/// Inserts a hold and its mailboxes in one transaction (409 if the name is
/// taken).
fn insert(
    db: &Db,
    name: &str,
    query: Option<&str>,
    by: &str,
    placed: i64,
    mailboxes: &[String],
) -> Result<()> {
    let tx = db.transaction()?;
    let taken = tx.exists("SELECT 1 FROM holds WHERE name = $1", params![name])?;
    if taken {
        return Err(ServiceError::Conflict(format!(
            "a hold named {name} exists already (release it first, or choose another name)"
        )));
    }
    tx.execute(
        "INSERT INTO holds(name, query, placed_by, placed) VALUES ($1, $2, $3, $4)",
        params![name, query, by, placed],
    )?;
    for mb in mailboxes {
        tx.execute(
            "INSERT INTO hold_mailboxes(hold, mailbox) VALUES ($1, $2)",
            params![name, mb],
        )?;
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(b: u8) -> MessageId {
        MessageId([b; 32])
    }

    #[test]
    fn coverage_names_the_first_hold_that_covers() {
        let c = Coverage {
            holds: vec![
                ("a-query".into(), Some([id(1)].into_iter().collect())),
                ("b-all".into(), None),
            ],
        };
        assert_eq!(c.covering(&id(1)), Some("a-query"));
        assert_eq!(c.covering(&id(2)), Some("b-all"));
        let only_query = Coverage {
            holds: vec![("q".into(), Some([id(1)].into_iter().collect()))],
        };
        assert_eq!(only_query.covering(&id(2)), None);
        assert!(Coverage::default().covering(&id(1)).is_none());
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("case-2026.01_a").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a b").is_err());
        assert!(check_name(&"x".repeat(65)).is_err());
    }
}
