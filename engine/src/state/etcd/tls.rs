//! The TLS files of an `etcds://` store, read into the client: a file that cannot be read or
//! is not PEM is named, before anything is sent.

use std::path::Path;

use super::TlsFiles;

fn read(what: &str, path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read the etcd {what} file {}: {e}", path.display()))
}

/// `builder` speaking only TLS, trusting `files.ca` (else the system's roots), presenting
/// `files.cert` and `files.key` if given.
pub(super) fn configure(mut builder: reqwest::ClientBuilder, files: &TlsFiles) -> Result<reqwest::ClientBuilder, String> {
    builder = builder.https_only(true);
    if let Some(ca) = &files.ca {
        let pem = read("CA", ca)?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("the etcd CA file {} is not PEM certificates: {e}", ca.display()))?;
        if certs.is_empty() {
            return Err(format!("the etcd CA file {} holds no certificate (expected -----BEGIN CERTIFICATE-----)", ca.display()));
        }
        builder = builder.tls_built_in_root_certs(false);
        for c in certs {
            builder = builder.add_root_certificate(c);
        }
    }
    if let (Some(cert), Some(key)) = (&files.cert, &files.key) {
        let mut pem = read("client certificate", cert)?;
        pem.push(b'\n');
        pem.extend(read("client key", key)?);
        let id = reqwest::Identity::from_pem(&pem).map_err(|e| {
            format!(
                "the etcd client certificate {} and key {} are not a PEM certificate and its private key: {e}",
                cert.display(),
                key.display()
            )
        })?;
        builder = builder.identity(id);
    }
    Ok(builder)
}
