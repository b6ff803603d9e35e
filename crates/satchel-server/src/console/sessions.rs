//! Console sessions, kept in the catalog as the service's component
//! `console` (so they survive a restart, and every service on one catalog
//! knows them). A session is stored under the SHA-256 of its cookie token,
//! like API tokens: a copy of the catalog signs nobody in.

use crate::auth::token_hash;
use satchel_archive::Result;
use satchel_archive::catalog::{Catalog, Migration, now};
use satchel_archive::params;

/// The component's name in `schema_versions`.
pub const COMPONENT: &str = "console";

const V1: &str = r#"
CREATE TABLE IF NOT EXISTS console_sessions(
  token_hash TEXT PRIMARY KEY,
  user_name TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
  password_hash TEXT NOT NULL,
  csrf TEXT NOT NULL,
  expires INTEGER NOT NULL
);
"#;

const PG_V1: &str = r#"
CREATE TABLE IF NOT EXISTS console_sessions(
  token_hash TEXT COLLATE "C" PRIMARY KEY,
  user_name TEXT COLLATE "C" NOT NULL REFERENCES users(name) ON DELETE CASCADE,
  password_hash TEXT COLLATE "C" NOT NULL,
  csrf TEXT COLLATE "C" NOT NULL,
  expires BIGINT NOT NULL
);
"#;

/// Creates or upgrades the sessions table; run once when the service opens.
pub fn migrate(cat: &Catalog) -> Result<()> {
    cat.migrate_component(
        COMPONENT,
        &[Migration {
            sqlite: V1,
            postgres: PG_V1,
        }],
    )
}

/// A live session: who, the password it was opened with (a new password
/// signs it out) and its CSRF token.
pub struct Stored {
    pub user: String,
    pub password_hash: String,
    pub csrf: String,
}

/// Records a new session for `token`, valid `lifetime_secs`; expired
/// sessions are dropped on the way.
pub fn open(cat: &Catalog, token: &str, session: &Stored, lifetime_secs: i64) -> Result<()> {
    let db = cat.db();
    db.execute(
        "DELETE FROM console_sessions WHERE expires <= $1",
        params![now()],
    )?;
    db.execute(
        "INSERT INTO console_sessions(token_hash, user_name, password_hash, csrf, expires)
         VALUES ($1, $2, $3, $4, $5)",
        params![
            token_hash(token),
            &session.user,
            &session.password_hash,
            &session.csrf,
            now() + lifetime_secs
        ],
    )?;
    Ok(())
}

/// The unexpired session of `token`, if any.
pub fn find(cat: &Catalog, token: &str) -> Result<Option<Stored>> {
    cat.db()
        .query_opt(
            "SELECT user_name, password_hash, csrf FROM console_sessions
             WHERE token_hash = $1 AND expires > $2",
            params![token_hash(token), now()],
        )?
        .map(|r| {
            Ok(Stored {
                user: r.get(0)?,
                password_hash: r.get(1)?,
                csrf: r.get(2)?,
            })
        })
        .transpose()
}

/// Ends the session of `token` (signing out).
pub fn close(cat: &Catalog, token: &str) -> Result<()> {
    cat.db().execute(
        "DELETE FROM console_sessions WHERE token_hash = $1",
        params![token_hash(token)],
    )?;
    Ok(())
}
