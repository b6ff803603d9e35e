//! Trust for an `https://` service: a private CA given by the user
//! (`--ca-file`, `SATCHEL_CA_FILE`, or the one a laptop home remembers), and
//! the plain reading of a certificate the client refused.

use std::path::Path;

use crate::client::ApiError;

/// The environment variable naming a private CA's certificate file (PEM).
pub const CA_FILE_VAR: &str = "SATCHEL_CA_FILE";

/// The certificates of a private certificate authority, trusted for an
/// `https://` service besides the platform's roots.
#[derive(Clone)]
pub struct PrivateCa {
    pem: String,
    certs: Vec<reqwest::Certificate>,
}

impl std::fmt::Debug for PrivateCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrivateCa")
            .field("certificates", &self.certs.len())
            .finish()
    }
}

impl PrivateCa {
    /// Reads a PEM file of one or more CA certificates.
    pub fn from_file(path: &Path) -> Result<PrivateCa, ApiError> {
        let bad = |reason: String| ApiError::CaFile {
            path: path.display().to_string(),
            reason,
        };
        let pem = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        PrivateCa::from_pem(pem).map_err(|reason| bad(reason.to_string()))
    }

    /// The certificates of `pem`; an error says why it holds none.
    pub fn from_pem(pem: String) -> Result<PrivateCa, &'static str> {
        let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
            .map_err(|_| "it is not a PEM certificate file")?;
        if certs.is_empty() {
            return Err("it holds no PEM certificate (-----BEGIN CERTIFICATE-----)");
        }
        Ok(PrivateCa { pem, certs })
    }

    /// The PEM text, as given (what a laptop home stores).
    pub fn pem(&self) -> &str {
        &self.pem
    }

    pub(crate) fn certificates(&self) -> impl Iterator<Item = reqwest::Certificate> + '_ {
        self.certs.iter().cloned()
    }
}

/// Why the service's certificate was refused, if that is why `e` failed:
/// rustls's verdict, found in the error's chain. An `io::Error` hides the
/// error it wraps from `source()` (and the TLS error comes wrapped in two),
/// so each one is opened.
pub(crate) fn refused_certificate(e: &reqwest::Error) -> Option<String> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = next {
        if let Some(rustls::Error::InvalidCertificate(why)) = err.downcast_ref::<rustls::Error>() {
            return Some(explain(why));
        }
        let wrapped = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .map(|inner| inner as &(dyn std::error::Error + 'static));
        next = wrapped.or_else(|| err.source());
    }
    None
}

fn explain(why: &rustls::CertificateError) -> String {
    use rustls::CertificateError as C;
    match why {
        C::UnknownIssuer => {
            "it is signed by a certificate authority this client does not trust".into()
        }
        C::NotValidForName | C::NotValidForNameContext { .. } => {
            "it is not valid for this host name".into()
        }
        C::Expired | C::ExpiredContext { .. } => "it has expired".into(),
        C::NotValidYet | C::NotValidYetContext { .. } => "it is not valid yet".into(),
        other => format!("it does not verify ({other:?})"),
    }
}
