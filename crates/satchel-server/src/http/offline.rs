//! `/api/v1/offline/...` and `/api/v1/jobs` (docs/offline-api.md): thin
//! handlers over the `Service` methods of crate::offline, plus the HTTP
//! details of serving repositories (ETag/304, Range/206/416, caching).

use super::{Admin, AppState, Authenticated, Result, blocking};
use crate::error::ServiceError;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use satchel_api as api;
use satchel_offline::OfflineRepositoryList;
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// Segments never change (their name is their hash): cache them for a year.
const SEGMENT_CACHE: &str = "private, max-age=31536000, immutable";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/offline/mailboxes/{address}",
            put(enable).delete(disable),
        )
        .route("/api/v1/offline/mailboxes/{address}/flush", post(flush))
        .route("/api/v1/offline/sync", post(sync))
        .route("/api/v1/offline/defaults", get(defaults).put(set_defaults))
        .route("/api/v1/offline/schedule", get(schedule).put(set_schedule))
        .route("/api/v1/offline/status", get(status))
        .route("/api/v1/jobs", get(jobs))
        .route("/api/v1/offline/repositories", get(repositories))
        .route(
            "/api/v1/offline/repositories/{address}/manifest",
            get(manifest),
        )
        .route(
            "/api/v1/offline/repositories/{address}/segments/{name}",
            get(segment),
        )
}

async fn enable(
    State(s): State<AppState>,
    Admin(c): Admin,
    Path(address): Path<String>,
    body: Option<Json<api::OfflineEnable>>,
) -> Result<Json<api::OfflineMailboxStatus>> {
    let body = body.map(|Json(b)| b).unwrap_or_default();
    blocking(&s, move |s| s.offline_enable(&c, &address, &body))
        .await
        .map(Json)
}

async fn disable(
    State(s): State<AppState>,
    Authenticated(c): Authenticated,
    Path(address): Path<String>,
) -> Result<Json<api::OfflineMailboxStatus>> {
    blocking(&s, move |s| s.offline_disable(&c, &address))
        .await
        .map(Json)
}

async fn flush(
    State(s): State<AppState>,
    Authenticated(c): Authenticated,
    Path(address): Path<String>,
) -> Result<Json<api::OfflineUpdateResult>> {
    blocking(&s, move |s| s.offline_flush(&c, &address))
        .await
        .map(Json)
}

async fn sync(
    State(s): State<AppState>,
    Admin(c): Admin,
    body: axum::body::Bytes,
) -> Result<Json<api::OfflineSyncReport>> {
    let mailbox = sync_selection(&body)?;
    blocking(&s, move |s| s.offline_sync(&c, mailbox.as_deref()))
        .await
        .map(Json)
}

/// What `POST /offline/sync` asks for: no body or `{}` is every enabled
/// mailbox, `{"mailbox": ADDRESS}` that one. Anything else (`[]`,
/// `{"mailboxes": []}`, `{"mailbox": ""}`) is a 400: a selection that came out
/// empty must never turn into "every mailbox".
fn sync_selection(body: &[u8]) -> Result<Option<String>> {
    const SHAPE: &str = r#"the body is {} (every enabled mailbox) or {"mailbox": "ADDRESS"}"#;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ServiceError::BadRequest(format!("{SHAPE}; not JSON: {e}")))?;
    if !value.is_object() {
        return Err(ServiceError::BadRequest(format!("{SHAPE}, not {value}")));
    }
    let req: api::OfflineSyncRequest = serde_json::from_value(value)
        .map_err(|e| ServiceError::BadRequest(format!("{SHAPE}: {e}")))?;
    match req.mailbox {
        Some(m) if m.trim().is_empty() => Err(ServiceError::BadRequest(format!(
            "{SHAPE}: the mailbox is empty"
        ))),
        m => Ok(m),
    }
}

async fn defaults(
    State(s): State<AppState>,
    Authenticated(c): Authenticated,
) -> Result<Json<api::OfflineDefaults>> {
    blocking(&s, move |s| s.offline_defaults(&c))
        .await
        .map(Json)
}

async fn set_defaults(
    State(s): State<AppState>,
    Admin(c): Admin,
    Json(body): Json<api::SetOfflineDefaults>,
) -> Result<Json<api::OfflineDefaults>> {
    blocking(&s, move |s| s.set_offline_defaults(&c, &body))
        .await
        .map(Json)
}

async fn schedule(
    State(s): State<AppState>,
    Authenticated(c): Authenticated,
) -> Result<Json<api::OfflineSchedule>> {
    blocking(&s, move |s| s.offline_schedule(&c))
        .await
        .map(Json)
}

async fn set_schedule(
    State(s): State<AppState>,
    Admin(c): Admin,
    Json(body): Json<api::SetOfflineSchedule>,
) -> Result<Json<api::OfflineSchedule>> {
    blocking(&s, move |s| s.set_offline_schedule(&c, &body.cron))
        .await
        .map(Json)
}

#[derive(Deserialize)]
struct MailboxParam {
    mailbox: Option<String>,
    limit: Option<usize>,
}

async fn status(
    State(s): State<AppState>,
    Authenticated(c): Authenticated,
    Query(p): Query<MailboxParam>,
) -> Result<Json<api::OfflineStatusReport>> {
    blocking(&s, move |s| s.offline_status(&c, p.mailbox.as_deref()))
        .await
        .map(Json)
}

async fn jobs(
    State(s): State<AppState>,
    Authenticated(c): Authenticated,
    Query(p): Query<MailboxParam>,
) -> Result<Json<Vec<api::JobView>>> {
    let limit = p.limit.unwrap_or(50);
    blocking(&s, move |s| s.jobs(&c, limit, p.mailbox.as_deref()))
        .await
        .map(Json)
}

async fn repositories(
    State(s): State<AppState>,
    Authenticated(c): Authenticated,
) -> Result<Json<OfflineRepositoryList>> {
    blocking(&s, move |s| s.offline_repositories(&c))
        .await
        .map(Json)
}

/// True if an `If-None-Match` header matches `etag` (or is `*`).
fn etag_matches(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == etag || t == "*")
}

async fn manifest(
    State(s): State<AppState>,
    Authenticated(c): Authenticated,
    Path(address): Path<String>,
    headers: HeaderMap,
) -> Result<Response> {
    let (c2, a2) = (c.clone(), address.clone());
    let (bytes, etag) = blocking(&s, move |s| s.offline_manifest(&c2, &a2)).await?;
    let tag = HeaderValue::from_str(&etag)
        .map_err(|_| ServiceError::Internal(format!("unusable ETag {etag}")))?;
    let no_cache = HeaderValue::from_static("no-cache");
    if etag_matches(&headers, &etag) {
        let h = [(header::ETAG, tag), (header::CACHE_CONTROL, no_cache)];
        return Ok((StatusCode::NOT_MODIFIED, h).into_response());
    }
    let bytes = blocking(&s, move |s| s.audit_download(&c, &address, bytes)).await?;
    let h = [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        ),
        (header::ETAG, tag),
        (header::CACHE_CONTROL, no_cache),
    ];
    Ok((h, bytes).into_response())
}

/// A single byte range, as asked for by a `Range` header.
#[derive(Debug, PartialEq, Eq)]
enum ByteRange {
    /// No (usable) Range header: the whole file.
    Whole,
    /// Inclusive first and last byte.
    Part(u64, u64),
    Unsatisfiable,
}

/// Parses `bytes=N-`, `bytes=N-M` and `bytes=-N` against a file of `len`
/// bytes with `http-range-header`. Several ranges or a malformed header are
/// ignored (the whole file is sent), as RFC 9110 allows; a range that starts
/// past the end (or any range of an empty file) is a 416.
fn parse_range(value: Option<&str>, len: u64) -> ByteRange {
    use http_range_header::RangeUnsatisfiableError::Unsatisfiable;
    let Some(parsed) = value.and_then(|v| http_range_header::parse_range_header(v.trim()).ok())
    else {
        return ByteRange::Whole;
    };
    if parsed.len() != 1 {
        return ByteRange::Whole;
    }
    match parsed.validate(len).as_deref() {
        Ok([range]) => ByteRange::Part(*range.start(), *range.end()),
        // Only an empty file validates to no range at all.
        Ok(_) | Err(Unsatisfiable) => ByteRange::Unsatisfiable,
        Err(_) => ByteRange::Whole,
    }
}

async fn segment(
    State(s): State<AppState>,
    Authenticated(c): Authenticated,
    Path((address, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response> {
    let name2 = name.clone();
    let (path, _) = blocking(&s, move |s| s.offline_segment(&c, &address, &name2)).await?;
    let gone = || {
        ServiceError::NotFound(format!(
            "segment {name} is no longer in the repository; fetch the manifest again"
        ))
    };
    let mut file = tokio::fs::File::open(&path).await.map_err(|_| gone())?;
    let len = file.metadata().await.map_err(|_| gone())?.len();
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let mut resp_headers = HeaderMap::new();
    let put = |h: &mut HeaderMap, k, v: String| {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(k, v);
        }
    };
    put(
        &mut resp_headers,
        header::CACHE_CONTROL,
        SEGMENT_CACHE.into(),
    );
    put(&mut resp_headers, header::ACCEPT_RANGES, "bytes".into());
    put(&mut resp_headers, header::ETAG, format!("\"{name}\""));
    let (status, start, count) = match parse_range(range, len) {
        ByteRange::Whole => (StatusCode::OK, 0, len),
        ByteRange::Part(a, b) => {
            put(
                &mut resp_headers,
                header::CONTENT_RANGE,
                format!("bytes {a}-{b}/{len}"),
            );
            (StatusCode::PARTIAL_CONTENT, a, b - a + 1)
        }
        ByteRange::Unsatisfiable => {
            put(
                &mut resp_headers,
                header::CONTENT_RANGE,
                format!("bytes */{len}"),
            );
            return Ok((StatusCode::RANGE_NOT_SATISFIABLE, resp_headers).into_response());
        }
    };
    file.seek(std::io::SeekFrom::Start(start))
        .await
        .map_err(|e| ServiceError::Internal(format!("reading segment {name}: {e}")))?;
    put(
        &mut resp_headers,
        header::CONTENT_TYPE,
        "application/octet-stream".into(),
    );
    put(&mut resp_headers, header::CONTENT_LENGTH, count.to_string());
    let body = segment_body(file.take(count));
    Ok((status, resp_headers, body).into_response())
}

/// Bytes read from a segment file per piece of the answer. Each read of a
/// tokio file is a trip through the blocking pool and each piece a write to
/// the socket: `ReaderStream`'s default of 4 KiB made 256 of each per MiB,
/// which cost a thousand laptops' storm most of the service's CPU.
const SEGMENT_PIECE: usize = 64 * 1024;

/// The answer's body: the file's bytes as they are read.
fn segment_body(file: tokio::io::Take<tokio::fs::File>) -> Body {
    Body::from_stream(tokio_util::io::ReaderStream::with_capacity(
        file,
        SEGMENT_PIECE,
    ))
}

#[cfg(test)]
mod tests {
    use super::{ByteRange::*, parse_range, sync_selection};

    /// A segment is read in large pieces (see [`super::SEGMENT_PIECE`]).
    #[tokio::test]
    async fn a_segment_is_served_in_large_reads() {
        use axum::body::HttpBody;
        use tokio::io::AsyncReadExt;
        const LEN: usize = 1 << 20;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("segment");
        std::fs::write(&path, vec![7u8; LEN]).expect("write");
        let file = tokio::fs::File::open(&path).await.expect("open");
        let mut body = super::segment_body(file.take(LEN as u64));
        let (mut pieces, mut bytes) = (0, 0);
        while let Some(frame) =
            std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await
        {
            let data = frame.expect("frame").into_data().expect("data");
            pieces += 1;
            bytes += data.len();
        }
        assert_eq!(bytes, LEN);
        assert!(pieces <= LEN / (64 * 1024), "{pieces} pieces for 1 MiB");
    }

    #[test]
    fn sync_selections() {
        assert_eq!(sync_selection(b"").ok(), Some(None));
        assert_eq!(sync_selection(b" {} ").ok(), Some(None));
        assert_eq!(
            sync_selection(br#"{"mailbox": "a@b.example"}"#).ok(),
            Some(Some("a@b.example".to_string()))
        );
        for bad in [
            &b"[]"[..],
            b"null",
            b"\"a@b\"",
            br#"{"mailboxes": []}"#,
            br#"{"mailbox": []}"#,
            br#"{"mailbox": ""}"#,
            br#"{"mailbox": "a@b", "extra": 1}"#,
            b"{",
        ] {
            assert!(
                sync_selection(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 10), Whole);
        assert_eq!(parse_range(Some("bytes=3-"), 10), Part(3, 9));
        assert_eq!(parse_range(Some("bytes=3-5"), 10), Part(3, 5));
        assert_eq!(parse_range(Some("bytes=3-50"), 10), Part(3, 9));
        assert_eq!(parse_range(Some("bytes=-4"), 10), Part(6, 9));
        assert_eq!(parse_range(Some("bytes=10-"), 10), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=5-3"), 10), Whole);
        assert_eq!(parse_range(Some("bytes=0-1,4-5"), 10), Whole);
        assert_eq!(parse_range(Some("items=0-1"), 10), Whole);
        assert_eq!(parse_range(Some("bytes=-0"), 10), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=-40"), 10), Part(0, 9));
        assert_eq!(parse_range(Some("bytes=0-"), 0), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=-3"), 0), Unsatisfiable);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(
            std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2_000)
        ))]

        /// Any header value: never a panic, and a part is always inside the file.
        #[test]
        fn any_range_header_is_inside_the_file(value in "\\PC{0,40}", len in 0u64..1_000_000) {
            check(parse_range(Some(&value), len), len);
        }

        #[test]
        fn range_like_headers_are_inside_the_file(
            value in " ?bytes= ?[0-9]{0,21} ?- ?[0-9]{0,21}(,[0-9]{0,3}-[0-9]{0,3})?",
            len in proptest::prop_oneof![0u64..16, proptest::prelude::any::<u64>()],
        ) {
            check(parse_range(Some(&value), len), len);
        }
    }

    fn check(r: super::ByteRange, len: u64) {
        if let Part(first, last) = r {
            assert!(first <= last && last < len, "{first}-{last} of {len}");
        }
    }
}
