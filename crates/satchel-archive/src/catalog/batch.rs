//! The catalog's statements over a whole import batch.
//!
//! On PostgreSQL every statement is a round trip over the network, so each
//! step of a batch is one set-based statement whatever the batch's size: the
//! ids travel as one array parameter ([`Value::Texts`], [`Value::Ints`]) and
//! the server walks them (`= ANY($1)`, `UNNEST(...)`). SQLite runs in the
//! process: its per-row prepared statements inside one transaction cost
//! microseconds each, so it keeps them (same results, same rows).

use super::{Catalog, Db, Dialect, Location, MessageMeta, NewMessage, Value, now};
use crate::error::Result;
use crate::message::MessageId;
use crate::params;
use std::collections::{HashMap, HashSet};

impl Catalog {
    /// Which of these ids the store already holds.
    pub fn known_ids<'a>(
        &self,
        ids: impl Iterator<Item = &'a MessageId>,
    ) -> Result<HashSet<MessageId>> {
        if self.db.dialect() == Dialect::Postgres {
            let rows = self.db.query(
                "SELECT id FROM messages WHERE id = ANY($1)",
                &[Value::ids(ids)],
            )?;
            return rows.iter().map(|r| r.get(0)).collect();
        }
        let mut known = HashSet::new();
        for id in ids {
            if self
                .db
                .exists("SELECT 1 FROM messages WHERE id = $1", params![id])?
            {
                known.insert(*id);
            }
        }
        Ok(known)
    }

    /// Which of these ids are already in the mailbox.
    pub fn members_among<'a>(
        &self,
        mailbox: &str,
        ids: impl Iterator<Item = &'a MessageId>,
    ) -> Result<HashSet<MessageId>> {
        if self.db.dialect() == Dialect::Postgres {
            let rows = self.db.query(
                "SELECT id FROM membership WHERE mailbox = $1 AND id = ANY($2)",
                &[mailbox.into(), Value::ids(ids)],
            )?;
            return rows.iter().map(|r| r.get(0)).collect();
        }
        let mut members = HashSet::new();
        for id in ids {
            if self.in_mailbox(mailbox, id)? {
                members.insert(*id);
            }
        }
        Ok(members)
    }

    /// The mailboxes of each message (sorted), for its index document; an
    /// id in no mailbox is absent.
    pub fn mailboxes_of_each<'a>(
        &self,
        ids: impl Iterator<Item = &'a MessageId>,
    ) -> Result<HashMap<MessageId, Vec<String>>> {
        let mut boxes: HashMap<MessageId, Vec<String>> = HashMap::new();
        if self.db.dialect() == Dialect::Postgres {
            let rows = self.db.query(
                "SELECT id, mailbox FROM membership WHERE id = ANY($1) ORDER BY id, mailbox",
                &[Value::ids(ids)],
            )?;
            for r in &rows {
                boxes.entry(r.get(0)?).or_default().push(r.get(1)?);
            }
            return Ok(boxes);
        }
        for id in ids {
            let of = self.mailboxes_of(id)?;
            if !of.is_empty() {
                boxes.insert(*id, of);
            }
        }
        Ok(boxes)
    }

    /// Where each of these messages' bytes are (an index rebuild reads a
    /// page of them); an id the catalog does not hold is absent.
    pub fn locations<'a>(
        &self,
        ids: impl Iterator<Item = &'a MessageId>,
    ) -> Result<HashMap<MessageId, Location>> {
        let mut places = HashMap::new();
        if self.db.dialect() == Dialect::Postgres {
            let rows = self.db.query(
                r#"SELECT g.id, p.repo, g.pack, g."offset", g.length, g.size FROM messages g
                   JOIN packs p ON p.name = g.pack WHERE g.id = ANY($1)"#,
                &[Value::ids(ids)],
            )?;
            for r in &rows {
                places.insert(r.get(0)?, super::location_row(r, 1)?);
            }
            return Ok(places);
        }
        for id in ids {
            if let Some(loc) = self.location(id)? {
                places.insert(*id, loc);
            }
        }
        Ok(places)
    }

    /// The catalog entries of these ids (a search's hits); an id the
    /// catalog does not hold is absent.
    pub fn message_metas<'a>(
        &self,
        ids: impl Iterator<Item = &'a MessageId>,
    ) -> Result<HashMap<MessageId, MessageMeta>> {
        let mut metas = HashMap::new();
        if self.db.dialect() == Dialect::Postgres {
            let rows = self.db.query(
                "SELECT id, size, date, sender, subject FROM messages WHERE id = ANY($1)",
                &[Value::ids(ids)],
            )?;
            for r in &rows {
                let meta = super::membership::meta_row(r)?;
                metas.insert(meta.id, meta);
            }
            return Ok(metas);
        }
        for id in ids {
            if let Some(meta) = self.message_meta(id)? {
                metas.insert(*id, meta);
            }
        }
        Ok(metas)
    }
}

/// Records a batch's new messages, all stored in `pack`, inside the caller's
/// transaction; ids already recorded are left as they are.
pub fn insert_messages(tx: &Db, pack: &str, batch: &[NewMessage<'_>]) -> Result<()> {
    if tx.dialect() == Dialect::Sqlite {
        for m in batch {
            super::insert_message(tx, pack, m)?;
        }
        return Ok(());
    }
    let ints = |f: fn(&NewMessage<'_>) -> Option<i64>| Value::Ints(batch.iter().map(f).collect());
    let texts = |f: for<'m> fn(&'m NewMessage<'_>) -> &'m str| {
        Value::Texts(batch.iter().map(|m| Some(f(m).to_owned())).collect())
    };
    tx.execute(
        r#"INSERT INTO messages(id, size, pack, "offset", length, date, sender, subject)
           SELECT u.id, u.size, $1::text, u.o, u.l, u.d, u.s, u.j
           FROM UNNEST($2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[],
                       $7::text[], $8::text[]) AS u(id, size, o, l, d, s, j)
           ON CONFLICT DO NOTHING"#,
        &[
            pack.into(),
            Value::ids(batch.iter().map(|m| m.id)),
            ints(|m| Some(m.size as i64)),
            ints(|m| Some(m.span.offset as i64)),
            ints(|m| Some(m.span.length as i64)),
            ints(|m| m.date),
            texts(|m| m.from),
            texts(|m| m.subject),
        ],
    )?;
    Ok(())
}

/// Adds messages (id, folder) to a mailbox, logging each addition, inside
/// the caller's transaction, which must hold [`Db::lock_membership_log`]
/// (seqs are then handed out in commit order). Messages already there are
/// left alone; returns how many were added.
pub fn insert_memberships(tx: &Db, mailbox: &str, batch: &[(MessageId, &str)]) -> Result<u64> {
    if tx.dialect() == Dialect::Sqlite {
        let mut added = 0;
        for (id, folder) in batch {
            added += u64::from(super::insert_membership(tx, mailbox, id, folder)?);
        }
        return Ok(added);
    }
    let ids = Value::ids(batch.iter().map(|(id, _)| id));
    let folders = Value::Texts(batch.iter().map(|(_, f)| Some((*f).to_owned())).collect());
    // The seqs come from the log's identity column, in the batch's order;
    // the membership rows take them over.
    tx.query_one(
        "WITH new AS (
           SELECT DISTINCT ON (u.id) u.id, u.folder, u.ord
           FROM UNNEST($2::text[], $3::text[]) WITH ORDINALITY AS u(id, folder, ord)
           WHERE NOT EXISTS (SELECT 1 FROM membership m WHERE m.mailbox = $1 AND m.id = u.id)
           ORDER BY u.id, u.ord
         ), logged AS (
           INSERT INTO membership_log(mailbox, id, change, at)
           SELECT $1::text, id, 'add', $4::bigint FROM new ORDER BY ord
           RETURNING seq, id
         ), added AS (
           INSERT INTO membership(seq, mailbox, id, folder, added)
           SELECT l.seq, $1::text, l.id, n.folder, $4::bigint FROM logged l JOIN new n ON n.id = l.id
           RETURNING id
         )
         SELECT count(*) FROM added",
        &[mailbox.into(), ids, folders, now().into()],
    )?
    .get(0)
}
