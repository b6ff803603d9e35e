//! The web console at `/`: sign-in with the API's users, Mailbox Manager,
//! Status (offline archive), search and a sanitized message view.
//!
//! Plain HTML from maud templates (every spliced value escaped), one embedded
//! stylesheet, no JavaScript. Every
//! page calls the same [`Service`] functions as the API and the CLI, so the
//! console cannot disagree with them. Sessions live in the catalog
//! ([`sessions`]: they survive a restart and every service on one catalog
//! knows them); each carries a CSRF token that every changing form embeds
//! and every POST checks (403 otherwise).

mod admin;
mod page;
mod search;
pub mod sessions;

use crate::auth::{Credentials, random_secret};
use crate::error::ServiceError;
use crate::http::{ClientAddress, blocking};
use crate::service::{Caller, Service};
use axum::extract::{DefaultBodyLimit, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router, middleware};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use maud::{Markup, html};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

const COOKIE: &str = "satchel_session";
const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);
const CSS: &str = include_str!("console.css");

/// What every console page may fetch: itself, its stylesheet, inline images.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

#[derive(Clone)]
pub struct Console {
    service: Arc<Service>,
}

/// The console's forms hold names, addresses and a schedule: 64 KiB is far more
/// than any of them, and bounds what is read before a sign-in is checked.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// The console's routes, to be merged into the service's router.
pub fn router(service: Arc<Service>) -> Router {
    let state = Console { service };
    Router::new()
        .route("/", get(home))
        .route("/console", get(home))
        .route("/console/console.css", get(css))
        .route("/console/login", get(login_page).post(login))
        .route("/console/logout", post(logout))
        .route("/console/search", get(search::search))
        .route("/console/messages/{address}/{id}", get(search::message))
        .route("/console/messages/{address}/{id}/raw", get(search::raw))
        .route(
            "/console/messages/{address}/{id}/delete",
            get(admin::delete_message_confirm).post(admin::delete_message),
        )
        .route(
            "/console/messages/{address}/{id}/attachments/{n}",
            get(search::attachment),
        )
        .route(
            "/console/mailboxes",
            get(admin::mailboxes).post(admin::add_mailbox),
        )
        .route("/console/mailboxes/{address}", get(admin::properties))
        .route(
            "/console/mailboxes/{address}/repository",
            post(admin::set_repository),
        )
        .route("/console/mailboxes/{address}/grants", post(admin::grant))
        .route("/console/mailboxes/{address}/offline", post(admin::enable))
        .route(
            "/console/mailboxes/{address}/offline/disable",
            post(admin::disable),
        )
        .route(
            "/console/mailboxes/{address}/flush",
            get(admin::flush_confirm).post(admin::flush),
        )
        .route("/console/status", get(admin::status))
        .route("/console/audit", get(admin::audit))
        .route("/console/holds", get(admin::holds).post(admin::place_hold))
        .route(
            "/console/holds/{name}/release",
            get(admin::release_hold_confirm).post(admin::release_hold),
        )
        .route("/console/status/schedule", post(admin::set_schedule))
        .route("/console/status/defaults", post(admin::set_defaults))
        .route("/console/status/sync", post(admin::sync_now))
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
        .layer(middleware::map_response(security_headers))
        .with_state(state)
}

async fn security_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    r
}

/// A signed-in user: the caller (re-read from the catalog on every request, so
/// a removed user or changed admin flag takes effect at once) and the CSRF
/// token of the session.
pub struct Session {
    pub caller: Caller,
    pub csrf: String,
    token: String,
}

impl Session {
    pub fn admin(&self) -> bool {
        self.caller.user.admin
    }

    /// 403 unless the form carries this session's CSRF token.
    pub fn check_csrf(&self, form: &HashMap<String, String>) -> Result<(), PageError> {
        let given = form.get("csrf").map(String::as_str).unwrap_or("");
        if constant_time_eq(given.as_bytes(), self.csrf.as_bytes()) {
            Ok(())
        } else {
            Err(PageError(ServiceError::Forbidden(
                "the form's security token is missing or stale: reload the page and try again"
                    .into(),
            )))
        }
    }

    pub fn require_admin(&self) -> Result<(), PageError> {
        self.caller.require_admin().map_err(PageError)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The session token from the request's cookies, if it carries one.
fn cookie_token(headers: &HeaderMap) -> Option<String> {
    CookieJar::from_headers(headers)
        .get(COOKIE)
        .map(|c| c.value().to_string())
}

/// The session cookie: never readable by scripts, never sent by other sites,
/// valid for the whole service (the console and its message links).
fn session_cookie(token: String) -> Cookie<'static> {
    Cookie::build((COOKIE, token))
        .http_only(true)
        .same_site(SameSite::Strict)
        .path("/")
        .build()
}

impl FromRequestParts<Console> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &Console) -> Result<Self, Response> {
        let to_login = || Redirect::to("/console/login").into_response();
        let ClientAddress(source) = ClientAddress::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let Some(token) = cookie_token(&parts.headers) else {
            return Err(to_login());
        };
        let find = token.clone();
        let found = blocking(&state.service, move |s| {
            let cat = s.archive().catalog()?;
            let Some(stored) = sessions::find(&cat, &find)? else {
                return Ok(None);
            };
            Ok(Some((cat.user(&stored.user)?, stored)))
        })
        .await
        .map_err(|e| PageError(e).into_response())?;
        let Some((info, stored)) = found else {
            return Err(to_login());
        };
        let csrf = stored.csrf;
        let caller = match info {
            Some(user) if user.password_hash == stored.password_hash => Caller {
                user,
                by_password: true,
                source,
            },
            // Removed, or the password changed since: signed out.
            _ => return Err(to_login()),
        };
        // A directory user's groups and administrator flag are the
        // directory's now; one it no longer knows is signed out.
        let caller = match crate::signin::with_directory(&state.service, caller).await {
            Ok(caller) => caller,
            Err(ServiceError::Unauthorized(_)) => return Err(to_login()),
            Err(e) => return Err(PageError(e).into_response()),
        };
        Ok(Session {
            caller,
            csrf,
            token,
        })
    }
}

/// A service error shown as a console page with the error's status.
pub struct PageError(pub ServiceError);

/// A signed-in administrator, checked from the request head: a form sent by
/// anyone else is refused (403) before its body is read.
pub struct AdminSession(pub Session);

impl FromRequestParts<Console> for AdminSession {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &Console) -> Result<Self, Response> {
        let session = Session::from_request_parts(parts, state).await?;
        session
            .require_admin()
            .map_err(IntoResponse::into_response)?;
        Ok(AdminSession(session))
    }
}

impl From<ServiceError> for PageError {
    fn from(e: ServiceError) -> Self {
        PageError(e)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        let title = match status {
            StatusCode::FORBIDDEN => "Forbidden",
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::BAD_REQUEST => "Refused",
            StatusCode::CONFLICT => "Conflict",
            _ => "Error",
        };
        let body = html! {
            main {
                h1 { (status.as_u16()) " " (title) }
                div.error { (self.0) }
                p { a href="/console/search" { "Back to the console" } }
            }
        };
        (status, page::document(title, body)).into_response()
    }
}

pub type PageResult = Result<Response, PageError>;

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        CSS,
    )
        .into_response()
}

async fn home(State(st): State<Console>, parts: HeaderMap) -> Response {
    let signed_in = match cookie_token(&parts) {
        Some(token) => blocking(&st.service, move |s| {
            Ok(sessions::find(&*s.archive().catalog()?, &token)?.is_some())
        })
        .await
        .unwrap_or(false),
        None => false,
    };
    if signed_in {
        Redirect::to("/console/search").into_response()
    } else {
        Redirect::to("/console/login").into_response()
    }
}

fn login_form(error: Option<&str>, user: &str) -> Markup {
    let body = html! {
        main.login { section.card {
            h1 { "Satchel" }
            p.muted { "Sign in with your archive user name and password." }
            @if let Some(e) = error { div.error { (e) } }
            form method="post" action="/console/login" {
                label { "User name"
                    input type="text" name="user" #user value=(user) autocomplete="username" required autofocus;
                }
                label { "Password"
                    input type="password" name="password" #password autocomplete="current-password" required;
                }
                button type="submit" #signin { "Sign in" }
            }
        } }
    };
    page::document("Sign in", body)
}

async fn login_page() -> Markup {
    login_form(None, "")
}

async fn login(
    State(st): State<Console>,
    ClientAddress(client): ClientAddress,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let user = form.get("user").cloned().unwrap_or_default();
    let password = form.get("password").cloned().unwrap_or_default();
    let creds = Credentials::Basic {
        user: user.clone(),
        password,
    };
    match crate::signin::authenticate(&st.service, Some(creds), client, "console").await {
        Ok(caller) => {
            let token = random_secret();
            let stored = sessions::Stored {
                user: caller.user.name.clone(),
                password_hash: caller.user.password_hash.clone(),
                csrf: random_secret(),
            };
            let opening = token.clone();
            let opened = blocking(&st.service, move |s| {
                let lifetime = SESSION_LIFETIME.as_secs() as i64;
                Ok(sessions::open(
                    &*s.archive().catalog()?,
                    &opening,
                    &stored,
                    lifetime,
                )?)
            })
            .await;
            if let Err(e) = opened {
                return PageError(e).into_response();
            }
            let to = if caller.user.admin {
                "/console/mailboxes"
            } else {
                "/console/search"
            };
            let jar = CookieJar::new().add(session_cookie(token));
            (jar, Redirect::to(to)).into_response()
        }
        Err(e) => {
            let status = match e {
                ServiceError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
                ref other => other.status(),
            };
            let mut page = (status, login_form(Some(&e.to_string()), &user)).into_response();
            if let Some(secs) = e.retry_after() {
                page.headers_mut().insert(header::RETRY_AFTER, secs.into());
            }
            page
        }
    }
}

async fn logout(
    State(st): State<Console>,
    session: Session,
    Form(form): Form<HashMap<String, String>>,
) -> PageResult {
    session.check_csrf(&form)?;
    let token = session.token.clone();
    blocking(&st.service, move |s| {
        Ok(sessions::close(&*s.archive().catalog()?, &token)?)
    })
    .await?;
    // A removal cookie (empty, expired) with the same name and path, so the
    // browser drops it. Added, not `remove`d: a jar only sends a removal for
    // a cookie it was built with from the request.
    let mut removal = session_cookie(String::new());
    removal.make_removal();
    let jar = CookieJar::new().add(removal);
    Ok((jar, Redirect::to("/console/login")).into_response())
}
