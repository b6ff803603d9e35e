//! `GET /api/v1/mailboxes/{address}/export[?q=QUERY]`: a mailbox's messages
//! (all, or those matching a query), streamed one at a time (docs/api.md).
//!
//! The body is a line of JSON ([`api::ExportItem`]: id, size, time added)
//! followed by the message's bytes, for each message in the order they
//! joined the mailbox, then one [`api::ExportEnd`] line. A stream without
//! its end line was cut short (a read failed): the client says so. The
//! service holds one message at a time, never the mailbox.

use super::{AppState, Authenticated, Result, blocking};
use crate::audit::action;
use crate::error::ServiceError;
use crate::service::{Caller, Service};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use satchel_api as api;
use satchel_archive::MessageId;
use serde::Deserialize;
use std::collections::HashSet;
use tokio::sync::mpsc;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/mailboxes/{address}/export", get(export))
}

#[derive(Deserialize)]
struct ExportParams {
    q: Option<String>,
}

/// Messages read ahead of the connection: the service's memory for one
/// export is this many messages at most.
const READ_AHEAD: usize = 8;

/// Catalog rows read at once.
const PAGE: i64 = 500;

async fn export(
    State(s): State<AppState>,
    Authenticated(c): Authenticated,
    Path(address): Path<String>,
    Query(p): Query<ExportParams>,
) -> Result<Response> {
    let a = address.clone();
    let selection = blocking(&s, move |s| s.export_selection(&c, &a, p.q.as_deref())).await?;
    let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(READ_AHEAD);
    tokio::task::spawn_blocking(move || {
        if let Err(e) = stream(&s, &address, selection.as_ref(), &tx) {
            tracing::error!(mailbox = %address, error = %e, "export cut short");
            let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
        }
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        )],
        Body::from_stream(body),
    )
        .into_response())
}

impl Service {
    /// Checks that `caller` may export `address` (whoever may search it),
    /// records the export, and returns the ids a query selects (None: all).
    pub fn export_selection(
        &self,
        caller: &Caller,
        address: &str,
        query: Option<&str>,
    ) -> Result<Option<HashSet<MessageId>>> {
        self.require_search(caller, address)?;
        self.archive.catalog()?.require_mailbox(address)?;
        let selected = match query {
            Some(q) => Some(
                self.archive
                    .matching_ids(&caller.user, q, address)?
                    .into_iter()
                    .collect(),
            ),
            None => None,
        };
        let target = serde_json::json!({ "mailbox": address, "query": query });
        self.audit(caller, action::EXPORT, target)?;
        Ok(selected)
    }
}

/// Sends the selected messages of `address`, then the end line. Stops
/// quietly when the client goes away.
fn stream(
    service: &Service,
    address: &str,
    selected: Option<&HashSet<MessageId>>,
    tx: &mpsc::Sender<std::io::Result<Bytes>>,
) -> Result<()> {
    let mut end = api::ExportEnd {
        end: true,
        messages: 0,
        bytes: 0,
    };
    let mut after = 0;
    loop {
        let page = service
            .archive()
            .catalog()?
            .member_page(address, after, PAGE)?;
        let Some(&(last, _, _)) = page.last() else {
            break;
        };
        after = last;
        for (_, id, added) in page {
            if selected.is_some_and(|s| !s.contains(&id)) {
                continue;
            }
            let raw = service.archive().read(&id)?;
            let item = api::ExportItem {
                id,
                size: raw.len() as u64,
                added,
            };
            end.messages += 1;
            end.bytes += item.size;
            if !send(tx, line(&item)?) || !send(tx, Bytes::from(raw)) {
                return Ok(());
            }
        }
    }
    send(tx, line(&end)?);
    Ok(())
}

/// False once the client is gone.
fn send(tx: &mpsc::Sender<std::io::Result<Bytes>>, chunk: Bytes) -> bool {
    tx.blocking_send(Ok(chunk)).is_ok()
}

fn line<T: serde::Serialize>(value: &T) -> Result<Bytes> {
    let mut text = serde_json::to_vec(value)
        .map_err(|e| ServiceError::Internal(format!("export line: {e}")))?;
    text.push(b'\n');
    Ok(Bytes::from(text))
}
