//! S3-compatible repositories: packs as objects in a bucket.

use crate::error::{ArchiveError, Result};

/// An S3 repository's place: `s3://BUCKET[/PREFIX]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    /// Without leading or trailing `/`; empty for the bucket's root.
    pub prefix: String,
}

impl S3Location {
    pub fn parse(url: &str) -> Result<Self> {
        let invalid = |why: &str| ArchiveError::Invalid {
            what: "S3 URL",
            why: format!("{url:?} {why} (expected s3://BUCKET[/PREFIX])"),
        };
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| invalid("does not start with s3://"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !valid_bucket {
            return Err(invalid("has no valid bucket name"));
        }
        Ok(S3Location {
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
        })
    }
}

/// An S3 endpoint is an `http://` or `https://` URL with a host.
pub fn check_endpoint(endpoint: &str) -> Result<()> {
    let host = ["http://", "https://"]
        .iter()
        .find_map(|scheme| endpoint.strip_prefix(scheme));
    match host {
        Some(h) if !h.is_empty() && !h.starts_with('/') => Ok(()),
        _ => Err(ArchiveError::Invalid {
            what: "S3 endpoint",
            why: format!("{endpoint:?} is not an http:// or https:// URL with a host"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse() {
        let l = S3Location::parse("s3://mail-bucket/archive/one/").expect("valid");
        assert_eq!(
            (l.bucket.as_str(), l.prefix.as_str()),
            ("mail-bucket", "archive/one")
        );
        let l = S3Location::parse("s3://mail-bucket").expect("valid");
        assert_eq!(l.prefix, "");
        for bad in ["http://host/bucket", "s3://", "s3://A_B/x", "s3:///x"] {
            assert!(S3Location::parse(bad).is_err(), "{bad}");
        }
        assert!(check_endpoint("http://127.0.0.1:8333").is_ok());
        assert!(check_endpoint("ftp://x").is_err());
        assert!(check_endpoint("http://").is_err());
    }
}
