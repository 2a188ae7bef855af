//! Azure Storage connection strings (`AccountName=…;AccountKey=…;BlobEndpoint=…`).
//!
//! Read here rather than with `azure_storage::ConnectionString`, whose errors quote the whole
//! string back, key included. A message from this parser names keys and positions, never a
//! value.

/// The parts of a connection string the blob actions use.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct ConnectionString {
    /// `AccountName`.
    pub(crate) account_name: Option<String>,
    /// `AccountKey` (a secret).
    pub(crate) account_key: Option<String>,
    /// `SharedAccessSignature` (a secret).
    pub(crate) sas: Option<String>,
    /// `BlobEndpoint`.
    pub(crate) blob_endpoint: Option<String>,
    /// `DefaultEndpointsProtocol`: `http` or `https`.
    pub(crate) protocol: Option<String>,
    /// `EndpointSuffix` (`core.windows.net`, `core.chinacloudapi.cn`…).
    pub(crate) endpoint_suffix: Option<String>,
    /// `UseDevelopmentStorage=true`: the emulator with its well-known account and key.
    pub(crate) development: Option<bool>,
}

/// Keys for the other storage services: accepted, and not needed by blob actions.
const OTHER_SERVICES: &[&str] = &[
    "BlobSecondaryEndpoint",
    "QueueEndpoint",
    "QueueSecondaryEndpoint",
    "TableEndpoint",
    "TableSecondaryEndpoint",
    "FileEndpoint",
    "FileSecondaryEndpoint",
];

impl ConnectionString {
    /// Reads `Key=Value;Key=Value`; keys are matched without regard to case, as Azure's SDKs do.
    pub(crate) fn parse(text: &str) -> Result<ConnectionString, String> {
        let mut cs = ConnectionString::default();
        let parts = text.split(';').map(str::trim).filter(|p| !p.is_empty());
        for (n, part) in parts.enumerate() {
            let Some((key, value)) = part.split_once('=') else {
                return Err(format!("part {} is not `Key=Value`", n + 1));
            };
            let (key, value) = (key.trim(), value.trim());
            if key.is_empty() {
                return Err(format!("part {} has no key before `=`", n + 1));
            }
            if value.is_empty() {
                return Err(format!("`{key}` has no value"));
            }
            let value = value.to_string();
            match key.to_ascii_lowercase().as_str() {
                "accountname" => cs.account_name = Some(value),
                "accountkey" => cs.account_key = Some(value),
                "sharedaccesssignature" => cs.sas = Some(value),
                "blobendpoint" => cs.blob_endpoint = Some(value),
                "endpointsuffix" => cs.endpoint_suffix = Some(value),
                "defaultendpointsprotocol" => match value.to_ascii_lowercase().as_str() {
                    p @ ("http" | "https") => cs.protocol = Some(p.to_string()),
                    _ => return Err("`DefaultEndpointsProtocol` is neither `http` nor `https`".into()),
                },
                "usedevelopmentstorage" => match value.to_ascii_lowercase().as_str() {
                    "true" => cs.development = Some(true),
                    "false" => cs.development = Some(false),
                    _ => return Err("`UseDevelopmentStorage` is neither `true` nor `false`".into()),
                },
                "developmentstorageproxyuri" => {
                    return Err("`DevelopmentStorageProxyUri` is not supported: give the emulator's `BlobEndpoint` instead".into());
                }
                _ if OTHER_SERVICES.iter().any(|k| k.eq_ignore_ascii_case(key)) => {}
                _ => {
                    return Err(format!(
                        "`{key}` is not a connection string key (AccountName, AccountKey, SharedAccessSignature, BlobEndpoint, \
                         EndpointSuffix, DefaultEndpointsProtocol, UseDevelopmentStorage)"
                    ));
                }
            }
        }
        Ok(cs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_portals_connection_string() {
        let cs = ConnectionString::parse(
            "DefaultEndpointsProtocol=https;AccountName=drassets;AccountKey=a2V5a2V5a2V5==;EndpointSuffix=core.windows.net",
        )
        .unwrap();
        assert_eq!(cs.account_name.as_deref(), Some("drassets"));
        assert_eq!(cs.account_key.as_deref(), Some("a2V5a2V5a2V5=="), "a value keeps its `=` padding");
        assert_eq!(cs.protocol.as_deref(), Some("https"));
        assert_eq!(cs.endpoint_suffix.as_deref(), Some("core.windows.net"));
    }

    #[test]
    fn reads_azurites_and_a_sas() {
        let cs = ConnectionString::parse(
            "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;SharedAccessSignature=sv=2019-12-12&ss=b&sig=abc%3D;QueueEndpoint=http://x;",
        )
        .unwrap();
        assert_eq!(cs.blob_endpoint.as_deref(), Some("http://127.0.0.1:10000/devstoreaccount1"));
        assert_eq!(cs.sas.as_deref(), Some("sv=2019-12-12&ss=b&sig=abc%3D"));
        let dev = ConnectionString::parse("usedevelopmentstorage=true").unwrap();
        assert_eq!(dev.development, Some(true));
    }

    #[test]
    fn errors_never_quote_a_value() {
        for (text, expected) in [
            ("AccountName=a;AccountKey", "part 2 is not `Key=Value`"),
            ("AccountKey=;AccountName=a", "`AccountKey` has no value"),
            ("=s3cr3t", "part 1 has no key"),
            ("AccountName=a;Password=s3cr3t", "`Password` is not a connection string key"),
            ("UseDevelopmentStorage=yes", "neither `true` nor `false`"),
            ("DefaultEndpointsProtocol=ftp;AccountKey=s3cr3t", "neither `http` nor `https`"),
        ] {
            let e = ConnectionString::parse(text).unwrap_err();
            assert!(e.contains(expected), "{text}: {e}");
            assert!(!e.contains("s3cr3t") && !e.contains("yes") && !e.contains("ftp"), "{text}: {e}");
        }
    }
}
