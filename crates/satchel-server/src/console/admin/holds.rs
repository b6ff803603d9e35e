//! Holds: every legal hold with what it covers, a form that places one
//! (name, mailboxes, optional query) and a release behind a confirmation
//! page; both changes carry the CSRF token and a ticked confirmation, as the
//! flush does (docs/compliance.md). The hold logic is the service's.

use super::{Fields, done, field, flash_of, optional};
use crate::console::page::{self, Flash, Nav, csrf_field, frame};
use crate::console::{AdminSession, Console, PageResult, Session};
use crate::http::blocking;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use maud::{Markup, html};
use satchel_api as api;
use satchel_api::client::segment;

const URL: &str = "/console/holds";

pub async fn holds(State(st): State<Console>, s: Session, Query(q): Query<Fields>) -> PageResult {
    s.require_admin()?;
    render(
        &st,
        &s,
        flash_of(&q).as_ref(),
        &Fields::new(),
        StatusCode::OK,
    )
    .await
}

async fn render(
    st: &Console,
    s: &Session,
    flash: Option<&Flash>,
    typed: &Fields,
    status: StatusCode,
) -> PageResult {
    let c = s.caller.clone();
    let list = blocking(&st.service, move |svc| svc.holds(&c)).await?;
    let body = html! {
        (table(&list))
        (place_form(s, typed))
    };
    Ok((status, frame(s, Nav::Holds, "Legal holds", flash, body)).into_response())
}

fn table(list: &[api::Hold]) -> Markup {
    html! {
        section.card {
            @if list.is_empty() {
                p.muted #no-holds { "No hold: retention and deletion apply to every message." }
            } @else {
                table.grid #holds {
                    thead { tr {
                        th { "Name" } th { "Mailboxes" } th { "Query" } th.num { "Messages held" }
                        th { "Placed by" } th { "Placed" } th {}
                    } }
                    tbody {
                        @for h in list {
                            tr data-hold=(h.name) {
                                td { (h.name) }
                                td { (h.mailboxes.join(", ")) }
                                td { @if let Some(q) = &h.query { code { (q) } } @else { span.muted { "every message" } } }
                                td.num.held { (h.messages) }
                                td { (h.placed_by) }
                                td.time { (page::rfc3339(Some(&h.placed))) }
                                td { a href={ (URL) "/" (segment(&h.name)) "/release" } .release { "Release…" } }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The form that places a hold; `typed` refills it after a refusal.
fn place_form(s: &Session, typed: &Fields) -> Markup {
    html! {
        section.card {
            h2 { "Place a hold" }
            p.src {
                "Every message of the mailboxes (or only those matching the query, in the search "
                "language), including mail archived later, survives retention and deletion until released."
            }
            form method="post" action=(URL) #place {
                (csrf_field(s))
                div.row {
                    label { "Name"
                        input type="text" name="name" #hold-name value=(field(typed, "name")) required;
                    }
                    label { "Mailboxes (separated by spaces or commas)"
                        input type="text" name="mailboxes" #hold-mailboxes value=(field(typed, "mailboxes")) required;
                    }
                    label { "Query (optional)"
                        input type="text" name="query" #hold-query value=(field(typed, "query"));
                    }
                }
                p { label.check {
                    input type="checkbox" name="confirm" value="yes" #hold-confirm required;
                    " Yes, place this hold"
                } }
                p { button type="submit" #place-button { "Place hold" } }
            }
        }
    }
}

pub async fn place(
    State(st): State<Console>,
    AdminSession(s): AdminSession,
    Form(f): Form<Fields>,
) -> PageResult {
    s.check_csrf(&f)?;
    if field(&f, "confirm") != "yes" {
        let e = Flash::Error("Tick the confirmation box to place the hold.".into());
        return render(&st, &s, Some(&e), &f, StatusCode::BAD_REQUEST).await;
    }
    let new = api::NewHold {
        name: field(&f, "name"),
        mailboxes: field(&f, "mailboxes")
            .split([',', ' '])
            .filter(|m| !m.is_empty())
            .map(str::to_string)
            .collect(),
        query: optional(&f, "query"),
    };
    let c = s.caller.clone();
    match blocking(&st.service, move |svc| svc.add_hold(&c, &new)).await {
        Ok(h) => Ok(done(
            URL,
            &format!("Hold {} placed: {} messages held.", h.name, h.messages),
        )),
        Err(e) => {
            let status = e.status();
            render(&st, &s, Some(&Flash::Error(e.to_string())), &f, status).await
        }
    }
}

pub async fn release_confirm(
    State(st): State<Console>,
    s: Session,
    Path(name): Path<String>,
) -> PageResult {
    s.require_admin()?;
    render_release(&st, &s, name, None, StatusCode::OK).await
}

async fn render_release(
    st: &Console,
    s: &Session,
    name: String,
    flash: Option<&Flash>,
    status: StatusCode,
) -> PageResult {
    let c = s.caller.clone();
    let n = name.clone();
    let h = blocking(&st.service, move |svc| svc.hold(&c, &n)).await?;
    let body = html! {
        section.card {
            p {
                "Releasing " strong { (h.name) } " (" (h.mailboxes.join(", ")) "; "
                @if let Some(q) = &h.query { "query " code { (q) } } @else { "every message" }
                ", " (h.messages) " messages) lets retention expire them and deletion remove them, "
                "unless another hold covers them."
            }
            form method="post" action={ (URL) "/" (segment(&h.name)) "/release" } #release {
                (csrf_field(s))
                p { label.check {
                    input type="checkbox" name="confirm" value="yes" #release-confirm required;
                    " Yes, release hold " (h.name)
                } }
                p {
                    button type="submit" .danger #release-button { "Release hold" }
                    " " a href=(URL) { "Cancel" }
                }
            }
        }
    };
    let title = format!("Release hold {name}");
    Ok((status, frame(s, Nav::Holds, &title, flash, body)).into_response())
}

pub async fn release(
    State(st): State<Console>,
    AdminSession(s): AdminSession,
    Path(name): Path<String>,
    Form(f): Form<Fields>,
) -> PageResult {
    s.check_csrf(&f)?;
    if field(&f, "confirm") != "yes" {
        let e = Flash::Error("Tick the confirmation box to release the hold.".into());
        return render_release(&st, &s, name, Some(&e), StatusCode::BAD_REQUEST).await;
    }
    let c = s.caller.clone();
    let n = name.clone();
    match blocking(&st.service, move |svc| svc.release_hold(&c, &n)).await {
        Ok(h) => Ok(done(URL, &format!("Hold {} released.", h.name))),
        Err(e) => {
            let status = e.status();
            render_release(&st, &s, name, Some(&Flash::Error(e.to_string())), status).await
        }
    }
}
