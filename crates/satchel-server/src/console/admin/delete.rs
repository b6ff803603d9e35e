//! Delete from this mailbox: the message view's administrator action. A
//! confirmation page with a required reason and a ticked confirmation, behind
//! the CSRF token as the hold release is (holds.rs), then the service's one
//! deletion path (`Service::delete_message`: audited with the reason, 409
//! naming the hold while one covers the message). Nothing here decides what
//! may be deleted.

use super::{Fields, done, field};
use crate::console::page::{Flash, Nav, csrf_field, frame};
use crate::console::{AdminSession, Console, PageError, PageResult, Session};
use crate::error::ServiceError;
use crate::http::blocking;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use maud::html;
use satchel_api::client::segment;
use satchel_message::MessageId;

/// The id in the URL; 400 saying why if it is not one.
fn parse_id(id: &str) -> Result<MessageId, PageError> {
    Ok(id.parse::<MessageId>().map_err(ServiceError::from)?)
}

/// The message view's URL of `id` in `address`.
fn message_url(address: &str, id: &str) -> String {
    format!("/console/messages/{}/{}", segment(address), segment(id))
}

pub async fn delete_confirm(
    State(st): State<Console>,
    s: Session,
    Path((address, id)): Path<(String, String)>,
) -> PageResult {
    s.require_admin()?;
    // 404 unless the mailbox holds the message: nobody confirms the
    // deletion of something that is not there.
    let (a, i) = (address.clone(), parse_id(&id)?);
    blocking(&st.service, move |svc| svc.require_member(&a, &i)).await?;
    render(&s, &address, &id, None, StatusCode::OK)
}

/// The confirmation page, with why the last attempt was refused.
fn render(
    s: &Session,
    address: &str,
    id: &str,
    flash: Option<&Flash>,
    status: StatusCode,
) -> PageResult {
    let view = message_url(address, id);
    let body = html! {
        section.card {
            p {
                "Deleting takes message " code { (id) } " out of mailbox " strong { (address) }
                ": it leaves search and reading at once, the offline copies at their next update, "
                "and, when no other mailbox holds it, its bytes leave the repository. "
                "It cannot be undone. A legal hold covering the message refuses it."
            }
            form method="post" action={ (view) "/delete" } #delete {
                (csrf_field(s))
                p { label { "Reason (kept in the audit trail)"
                    input type="text" name="reason" #delete-reason size="60" maxlength="1000" required;
                } }
                p { label.check {
                    input type="checkbox" name="confirm" value="yes" #delete-confirm required;
                    " Yes, delete this message from " (address)
                } }
                p {
                    button type="submit" .danger #delete-button { "Delete from this mailbox" }
                    " " a href=(view) { "Cancel" }
                }
            }
        }
    };
    let title = format!("Delete from {address}");
    Ok((status, frame(s, Nav::Search, &title, flash, body)).into_response())
}

pub async fn delete(
    State(st): State<Console>,
    AdminSession(s): AdminSession,
    Path((address, id)): Path<(String, String)>,
    Form(f): Form<Fields>,
) -> PageResult {
    s.check_csrf(&f)?;
    let refuse = |why: &str| Flash::Error(why.to_string());
    let reason = field(&f, "reason");
    let refusal = if reason.is_empty() {
        Some(refuse("Give a reason: it is kept in the audit trail."))
    } else if field(&f, "confirm") != "yes" {
        Some(refuse("Tick the confirmation box to delete the message."))
    } else {
        None
    };
    if let Some(e) = refusal {
        return render(&s, &address, &id, Some(&e), StatusCode::BAD_REQUEST);
    }
    let c = s.caller.clone();
    let (a, i) = (address.clone(), parse_id(&id)?);
    match blocking(&st.service, move |svc| {
        svc.delete_message(&c, &a, &i, &reason)
    })
    .await
    {
        Ok(d) => Ok(done(
            "/console/search",
            &format!("Message {} deleted from {}.", d.id, d.mailbox),
        )),
        Err(e) => {
            let status = e.status();
            render(&s, &address, &id, Some(&refuse(&e.to_string())), status)
        }
    }
}
