//! A resolved connection: one account, one endpoint, one credential; and the SDK client for it.

use std::fmt;

use std::sync::Arc;

use azure_core::auth::Secret;
use azure_core::{RetryOptions, TransportOptions};
use azure_storage::{CloudLocation, StorageCredentials};
use azure_storage_blobs::prelude::{BlobServiceClient, ClientBuilder};

use super::traced::Traced;

/// How requests are authenticated.
pub(crate) enum Credential {
    /// Shared Key: the account's access key (base64).
    Key(String),
    /// A shared access signature, without its leading `?`.
    Sas(String),
}

/// Where the blob actions go, and as whom.
pub(crate) struct Connection {
    /// The storage account's name.
    pub(crate) account: String,
    /// The blob endpoint, without a trailing `/` (and never with a query).
    pub(crate) endpoint: String,
    /// The credential.
    pub(crate) credential: Credential,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.credential {
            Credential::Key(_) => "access key",
            Credential::Sas(_) => "SAS",
        };
        f.debug_struct("Connection").field("account", &self.account).field("endpoint", &self.endpoint).field("credential", &kind).finish()
    }
}

impl Connection {
    /// The SDK client: no SDK retries (the step's `retry` is the one policy).
    pub(crate) fn client(&self) -> Result<BlobServiceClient, String> {
        let credentials = match &self.credential {
            Credential::Key(key) => StorageCredentials::access_key(self.account.clone(), Secret::new(key.clone())),
            // The SDK's own message would quote the token.
            Credential::Sas(sas) => StorageCredentials::sas_token(sas).map_err(|_| "the SAS token is not a query string".to_string())?,
        };
        let location = CloudLocation::Custom { account: self.account.clone(), uri: self.endpoint.clone() };
        let transport = TransportOptions::new_custom_policy(Arc::new(Traced::new(&self.endpoint)));
        Ok(ClientBuilder::with_location(location, credentials).retry(RetryOptions::none()).transport(transport).blob_service_client())
    }

    /// The text with every part of the credential replaced by `***`: the key, the SAS, and each
    /// of the SAS's values (a URL in an error carries them one by one, percent-encoded or not).
    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut secrets: Vec<String> = match &self.credential {
            Credential::Key(key) => vec![key.clone()],
            Credential::Sas(sas) => {
                let mut s = vec![sas.clone()];
                for pair in sas.split('&') {
                    if let Some((name, value)) = pair.split_once('=') {
                        // Version, dates and permissions are not secret; the signature is.
                        if name == "sig" || value.len() >= 16 {
                            s.push(value.to_string());
                            s.push(percent_decoded(value));
                        }
                    }
                }
                s
            }
        };
        secrets.retain(|s| s.len() >= 4);
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        let mut out = text.to_string();
        for s in &secrets {
            out = out.replace(s.as_str(), "***");
        }
        out
    }
}

fn percent_decoded(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubs_a_key_and_a_sas_and_its_signature() {
        let key = Connection { account: "a".into(), endpoint: "http://x".into(), credential: Credential::Key("a2V5LWtleS1rZXk=".into()) };
        assert_eq!(key.scrub("signing with a2V5LWtleS1rZXk= failed"), "signing with *** failed");
        let sas = Connection {
            account: "a".into(),
            endpoint: "http://x".into(),
            credential: Credential::Sas("sv=2019-12-12&ss=b&sp=rl&sig=AbC%2Bd%2Fe%3D".into()),
        };
        let url = "error sending request for url (http://x/c?restype=container&sv=2019-12-12&sig=AbC%2Bd%2Fe%3D)";
        assert_eq!(sas.scrub(url), "error sending request for url (http://x/c?restype=container&sv=2019-12-12&sig=***)");
        assert_eq!(sas.scrub("sig AbC+d/e="), "sig ***");
        assert!(format!("{sas:?}").contains("SAS") && !format!("{sas:?}").contains("AbC"));
    }
}
