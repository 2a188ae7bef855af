//! The connection settings every `azure_blob.*` action shares, and where each comes from.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use super::connection::{Connection, Credential};
use super::connection_string::ConnectionString;
use crate::Issue;

/// Which storage account to use, and how to authenticate. Each field left out comes from the
/// standard environment, as Azure's tools read it.
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
pub struct AzureSettings {
    /// The storage account's name; default: the connection string's `AccountName`, then
    /// `AZURE_STORAGE_ACCOUNT`.
    #[serde(default)]
    pub account: Option<String>,
    /// The account's access key: always `{{ secrets.… }}`. Default `AZURE_STORAGE_KEY`.
    #[serde(default)]
    pub access_key: Option<String>,
    /// A shared access signature (with or without its leading `?`): always `{{ secrets.… }}`.
    /// Default `AZURE_STORAGE_SAS_TOKEN`.
    #[serde(default)]
    pub sas_token: Option<String>,
    /// A connection string (`AccountName=…;AccountKey=…` or `…;SharedAccessSignature=…`,
    /// `BlobEndpoint`, `UseDevelopmentStorage=true`): `{{ secrets.… }}` when it holds a key or
    /// a SAS. Default `AZURE_STORAGE_CONNECTION_STRING`.
    #[serde(default)]
    pub connection_string: Option<String>,
    /// The blob endpoint URL (`http://127.0.0.1:10000/devstoreaccount1` for Azurite); default:
    /// the connection string's `BlobEndpoint`, else `https://ACCOUNT.blob.core.windows.net`.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Use the storage emulator (Azurite) with its well-known account and key, at `endpoint`
    /// or `http://127.0.0.1:10000/devstoreaccount1`.
    #[serde(default)]
    pub use_emulator: Option<bool>,
}

/// The well-known account of Azurite and the storage emulator.
pub(crate) const EMULATOR_ACCOUNT: &str = "devstoreaccount1";
/// Its well-known key (published by Microsoft; not a secret).
const EMULATOR_KEY: &str = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

const ENV_CONNECTION_STRING: &str = "AZURE_STORAGE_CONNECTION_STRING";
const ENV_ACCOUNT: &str = "AZURE_STORAGE_ACCOUNT";
const ENV_KEY: &str = "AZURE_STORAGE_KEY";
const ENV_SAS: &str = "AZURE_STORAGE_SAS_TOKEN";

/// Checks the settings in an unrendered `with`: credentials come from secrets, and literal
/// values make sense.
pub(crate) fn check(with: &Value) -> Vec<Issue> {
    let literal = |k: &str| with.get(k).and_then(Value::as_str).filter(|v| !v.contains("{{"));
    let has = |k: &str| with.get(k).is_some_and(|v| !v.is_null());
    let mut issues = vec![];
    for key in ["access_key", "sas_token"] {
        if literal(key).is_some() {
            issues.push(written_in_the_runbook(key));
        }
    }
    if let Some(cs) = literal("connection_string") {
        match ConnectionString::parse(cs) {
            Err(e) => issues.push(Issue::at("connection_string", format!("`connection_string` is not a connection string: {e}"))),
            // An emulator or endpoint-only string holds nothing secret.
            Ok(cs) if cs.account_key.is_some() || cs.sas.is_some() => issues.push(written_in_the_runbook("connection_string")),
            Ok(_) => {}
        }
    }
    if has("access_key") && has("sas_token") {
        issues.push(Issue::at("sas_token", "`access_key` and `sas_token` are both set").help("authenticate with one of them"));
    }
    if with.get("use_emulator").and_then(Value::as_bool) == Some(true) {
        for key in ["access_key", "sas_token", "connection_string"] {
            if has(key) {
                issues.push(
                    Issue::at(key, format!("`{key}` is set with `use_emulator: true`"))
                        .help("the emulator has its own well-known key: drop one of the two"),
                );
            }
        }
    }
    if let Some(url) = literal("endpoint") {
        if let Err(e) = check_endpoint(url) {
            issues.push(
                Issue::at("endpoint", e).help("e.g. `http://127.0.0.1:10000/devstoreaccount1` or `https://ACCOUNT.blob.core.windows.net`"),
            );
        }
    }
    issues
}

fn written_in_the_runbook(key: &str) -> Issue {
    Issue::at(key, format!("`{key}` is written in the runbook: a credential would live in git and in the run's inputs"))
        .help(format!("declare it under `secrets:` and write `{key}: \"{{{{ secrets.azure_{key} }}}}\"`"))
}

/// Why an endpoint URL is unusable, if it is.
fn check_endpoint(url: &str) -> Result<(), String> {
    let parsed = azure_core::Url::parse(url).map_err(|_| format!("`{url}` is not a URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("`{url}` is not an http(s) URL"));
    }
    if parsed.query().is_some() {
        // Not quoted: the query is likely a SAS.
        return Err("the endpoint has a query string (a SAS?): give the SAS as `sas_token`, from secrets".into());
    }
    Ok(())
}

/// One source of settings: what `with` says, or what the environment says.
#[derive(Debug, Default)]
struct Layer {
    account: Option<String>,
    key: Option<String>,
    sas: Option<String>,
    endpoint: Option<String>,
    protocol: Option<String>,
    suffix: Option<String>,
    emulator: Option<bool>,
}

impl Layer {
    fn from_connection_string(cs: ConnectionString) -> Layer {
        Layer {
            account: cs.account_name,
            key: cs.account_key,
            sas: cs.sas,
            endpoint: cs.blob_endpoint,
            protocol: cs.protocol,
            suffix: cs.endpoint_suffix,
            emulator: cs.development,
        }
    }

    fn has_credential(&self) -> bool {
        self.key.is_some() || self.sas.is_some() || self.emulator == Some(true)
    }
}

/// An empty string is no value (a template that rendered to nothing, an exported empty variable).
fn some(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.trim().is_empty())
}

impl AzureSettings {
    /// The account, endpoint and credential to use: these settings over the environment.
    pub(crate) fn resolve(&self) -> Result<Connection, String> {
        self.resolve_with(|k| std::env::var(k).ok())
    }

    /// The container at the endpoint and account these settings reach (over the
    /// environment); without credentials, what `with` says of them (empty when nothing).
    pub(crate) fn target(&self, container: &str) -> crate::Target {
        let (endpoint, account) = match self.resolve() {
            Ok(c) => (c.endpoint, c.account),
            Err(_) => {
                let layer = self.with_layer().unwrap_or_default();
                let account = layer.account.unwrap_or_default();
                let endpoint = layer
                    .endpoint
                    .unwrap_or_else(|| if account.is_empty() { String::new() } else { format!("https://{account}.blob.core.windows.net") });
                (endpoint, account)
            }
        };
        crate::Target::blob_container(&endpoint, &account, container)
    }

    fn with_layer(&self) -> Result<Layer, String> {
        let mut layer = match some(self.connection_string.clone()) {
            Some(cs) => Layer::from_connection_string(
                ConnectionString::parse(&cs).map_err(|e| format!("`connection_string` is not a connection string: {e}"))?,
            ),
            None => Layer::default(),
        };
        let explicit_credential = some(self.access_key.clone()).is_some() || some(self.sas_token.clone()).is_some();
        if explicit_credential {
            // `access_key` or `sas_token` replaces whatever the connection string authenticates with.
            (layer.key, layer.sas) = (some(self.access_key.clone()), some(self.sas_token.clone()));
        }
        layer.account = some(self.account.clone()).or(layer.account);
        layer.endpoint = some(self.endpoint.clone()).or(layer.endpoint);
        layer.emulator = self.use_emulator.or(layer.emulator);
        Ok(layer)
    }

    /// [`AzureSettings::resolve`] with the environment given.
    fn resolve_with(&self, env: impl Fn(&str) -> Option<String>) -> Result<Connection, String> {
        let env = |k: &str| some(env(k));
        let ours = self.with_layer()?;
        let theirs = match env(ENV_CONNECTION_STRING) {
            Some(cs) => {
                let cs = ConnectionString::parse(&cs).map_err(|e| format!("{ENV_CONNECTION_STRING} is not a connection string: {e}"))?;
                let mut layer = Layer::from_connection_string(cs);
                layer.account = layer.account.or_else(|| env(ENV_ACCOUNT));
                if !layer.has_credential() {
                    (layer.key, layer.sas) = (env(ENV_KEY), env(ENV_SAS));
                }
                layer
            }
            None => Layer { account: env(ENV_ACCOUNT), key: env(ENV_KEY), sas: env(ENV_SAS), ..Layer::default() },
        };

        // Credentials come whole from one place: `with` if it names any, else the environment.
        let (creds, creds_from) = if ours.has_credential() {
            (&ours, "`with`")
        } else if theirs.has_credential() {
            (&theirs, "the environment")
        } else {
            return Err(format!(
                "no Azure storage credentials: set `connection_string`, `access_key` or `sas_token` (from secrets) or \
                 `use_emulator: true` in `with`, or {ENV_CONNECTION_STRING}, or {ENV_ACCOUNT} with {ENV_KEY} or {ENV_SAS}"
            ));
        };
        // `use_emulator: false` in `with` turns off an emulator connection string in the environment.
        let emulator = ours.emulator.or(theirs.emulator) == Some(true);
        let credential = match (&creds.sas, &creds.key) {
            // A SAS wins over a key, as in Azure's SDKs.
            (Some(sas), _) => Credential::Sas(sas.trim_start_matches('?').to_string()),
            (None, Some(key)) => Credential::Key(key.clone()),
            (None, None) => Credential::Key(EMULATOR_KEY.to_string()),
        };
        let emulator_key = matches!(&credential, Credential::Key(k) if k == EMULATOR_KEY);

        // The endpoint: `with`'s, else the emulator's, else the one that came with the credentials.
        let endpoint = ours.endpoint.clone().or_else(|| emulator.then(|| format!("http://127.0.0.1:10000/{EMULATOR_ACCOUNT}")));
        let endpoint = endpoint.or_else(|| creds.endpoint.clone());
        let account = if emulator_key {
            // The emulator's key signs for its own account, whatever the environment names.
            some(self.account.clone()).unwrap_or_else(|| EMULATOR_ACCOUNT.to_string())
        } else {
            match ours.account.clone().or_else(|| theirs.account.clone()) {
                Some(a) => a,
                None => endpoint.as_deref().and_then(account_in_url).ok_or_else(|| {
                    format!(
                        "no Azure storage account: set `account` in `with`, or {ENV_ACCOUNT}, or `AccountName` in the connection string"
                    )
                })?,
            }
        };
        let endpoint = match endpoint {
            Some(e) => e,
            None => {
                let protocol = ours.protocol.as_ref().or(creds.protocol.as_ref()).map_or("https", String::as_str);
                let suffix = ours.suffix.as_ref().or(creds.suffix.as_ref()).map_or("core.windows.net", String::as_str);
                format!("{protocol}://{account}.blob.{suffix}")
            }
        };
        check_endpoint(&endpoint)?;
        if let Credential::Key(key) = &credential {
            if azure_core::base64::decode(key).is_err() {
                return Err(format!(
                    "the access key from {creds_from} is not base64 (an Azure access key is 88 characters ending in `==`)"
                ));
            }
        }
        Ok(Connection { account, endpoint: endpoint.trim_end_matches('/').to_string(), credential })
    }
}

/// The account named by an endpoint: `ACCOUNT.blob.…`, or the first path segment (Azurite's
/// `http://127.0.0.1:10000/ACCOUNT`).
fn account_in_url(url: &str) -> Option<String> {
    let url = azure_core::Url::parse(url).ok()?;
    let host = url.host_str()?;
    if let Some((account, rest)) = host.split_once('.') {
        if rest.starts_with("blob.") {
            return Some(account.to_string());
        }
    }
    url.path_segments()?.next().filter(|s| !s.is_empty()).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const KEY: &str = "c2VjcmV0LWtleS1mb3ItdGVzdHM=";

    fn resolve(with: Value, env: &[(&str, &str)]) -> Result<Connection, String> {
        let settings: AzureSettings = serde_json::from_value(with).unwrap();
        settings.resolve_with(|k| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string()))
    }

    #[test]
    fn a_connection_string_in_with_gives_account_key_and_endpoint() {
        let c =
            resolve(json!({ "connection_string": format!("AccountName=dr;AccountKey={KEY};BlobEndpoint=http://127.0.0.1:9/dr/") }), &[])
                .unwrap();
        assert_eq!((c.account.as_str(), c.endpoint.as_str()), ("dr", "http://127.0.0.1:9/dr"));
        assert!(matches!(c.credential, Credential::Key(ref k) if k == KEY));
    }

    #[test]
    fn the_public_endpoint_follows_the_account_and_suffix() {
        let c = resolve(json!({ "account": "drassets", "access_key": KEY }), &[]).unwrap();
        assert_eq!(c.endpoint, "https://drassets.blob.core.windows.net");
        let cs = format!("DefaultEndpointsProtocol=https;AccountName=cn;AccountKey={KEY};EndpointSuffix=core.chinacloudapi.cn");
        let c = resolve(json!({}), &[(ENV_CONNECTION_STRING, &cs)]).unwrap();
        assert_eq!(c.endpoint, "https://cn.blob.core.chinacloudapi.cn");
    }

    #[test]
    fn the_environment_fills_in_what_with_leaves_out() {
        let env = [(ENV_ACCOUNT, "envacct"), (ENV_KEY, KEY)];
        let c = resolve(json!({}), &env).unwrap();
        assert_eq!((c.account.as_str(), c.endpoint.as_str()), ("envacct", "https://envacct.blob.core.windows.net"));
        let c = resolve(json!({ "account": "other" }), &env).unwrap();
        assert_eq!(c.account, "other", "`with` wins over the environment");
        let c = resolve(json!({}), &[(ENV_ACCOUNT, "a"), (ENV_SAS, "?sv=1&sig=x")]).unwrap();
        assert!(matches!(c.credential, Credential::Sas(ref s) if s == "sv=1&sig=x"), "the leading `?` is dropped");
    }

    #[test]
    fn the_connection_string_variable_comes_before_the_key_variables() {
        let cs = format!("AccountName=fromcs;AccountKey={KEY}");
        let c = resolve(json!({}), &[(ENV_CONNECTION_STRING, &cs), (ENV_ACCOUNT, "fromvar"), (ENV_SAS, "sig=x")]).unwrap();
        assert_eq!(c.account, "fromcs");
        assert!(matches!(c.credential, Credential::Key(_)));
    }

    #[test]
    fn credentials_in_with_replace_the_environments_whole() {
        let cs = format!("AccountName=prod;AccountKey={KEY}");
        let c =
            resolve(json!({ "sas_token": "sv=1&sig=y", "endpoint": "http://127.0.0.1:9/dr" }), &[(ENV_CONNECTION_STRING, &cs)]).unwrap();
        assert!(matches!(c.credential, Credential::Sas(ref s) if s == "sv=1&sig=y"));
        assert_eq!((c.account.as_str(), c.endpoint.as_str()), ("prod", "http://127.0.0.1:9/dr"));
        // …and so does their endpoint: not the environment's emulator with `with`'s account.
        let env = [(ENV_CONNECTION_STRING, "UseDevelopmentStorage=false;BlobEndpoint=http://127.0.0.1:9/x;AccountName=x")];
        let c = resolve(json!({ "connection_string": format!("AccountName=prod;AccountKey={KEY}") }), &env).unwrap();
        assert_eq!((c.account.as_str(), c.endpoint.as_str()), ("prod", "https://prod.blob.core.windows.net"));
        // The emulator signs for its own account, not the one in the environment.
        let c = resolve(json!({ "use_emulator": true }), &[(ENV_ACCOUNT, "prod"), (ENV_KEY, KEY)]).unwrap();
        assert_eq!((c.account.as_str(), c.endpoint.as_str()), (EMULATOR_ACCOUNT, "http://127.0.0.1:10000/devstoreaccount1"));
        assert!(matches!(c.credential, Credential::Key(ref k) if k == EMULATOR_KEY));
    }

    #[test]
    fn the_emulator_on_another_port() {
        let c = resolve(json!({ "use_emulator": true, "endpoint": "http://127.0.0.1:4242/devstoreaccount1" }), &[]).unwrap();
        assert_eq!(c.endpoint, "http://127.0.0.1:4242/devstoreaccount1");
        let c = resolve(json!({ "connection_string": "UseDevelopmentStorage=true" }), &[]).unwrap();
        assert_eq!(c.endpoint, "http://127.0.0.1:10000/devstoreaccount1");
    }

    #[test]
    fn a_sas_with_an_endpoint_needs_no_account() {
        let c = resolve(json!({ "sas_token": "sig=z", "endpoint": "http://127.0.0.1:9/devstoreaccount1" }), &[]).unwrap();
        assert_eq!(c.account, "devstoreaccount1");
        let c = resolve(json!({ "sas_token": "sig=z", "endpoint": "https://drsite.blob.core.windows.net" }), &[]).unwrap();
        assert_eq!(c.account, "drsite");
    }

    #[test]
    fn empty_values_count_as_unset() {
        let c = resolve(json!({ "account": "", "connection_string": "", "use_emulator": true }), &[(ENV_CONNECTION_STRING, "")]).unwrap();
        assert_eq!(c.account, EMULATOR_ACCOUNT);
    }

    #[test]
    fn what_is_missing_or_wrong_is_said_without_the_secret() {
        let e = resolve(json!({ "account": "a" }), &[]).unwrap_err();
        assert!(e.contains("no Azure storage credentials") && e.contains(ENV_CONNECTION_STRING), "{e}");
        let e = resolve(json!({ "access_key": "s3cr3t!!" }), &[(ENV_ACCOUNT, "a")]).unwrap_err();
        assert!(e.contains("not base64") && !e.contains("s3cr3t"), "{e}");
        let e = resolve(json!({}), &[(ENV_CONNECTION_STRING, "AccountKey=s3cr3t;Nope=1")]).unwrap_err();
        assert!(e.starts_with("AZURE_STORAGE_CONNECTION_STRING is not a connection string") && !e.contains("s3cr3t"), "{e}");
        let e = resolve(json!({ "sas_token": "sig=s3cr3t", "endpoint": "http://127.0.0.1:9/x?sig=s3cr3t" }), &[]).unwrap_err();
        assert!(e.contains("query string") && !e.contains("s3cr3t"), "{e}");
        let e = resolve(json!({ "sas_token": "sig=s3cr3t" }), &[]).unwrap_err();
        assert!(e.contains("no Azure storage account"), "{e}");
    }

    #[test]
    fn check_refuses_literal_credentials_and_bad_endpoints() {
        let messages = |with: Value| check(&with).into_iter().map(|i| i.message).collect::<Vec<_>>().join("\n");
        let m = messages(json!({ "access_key": "abc==", "sas_token": "sig=x", "connection_string": "AccountName=a;AccountKey=k" }));
        for key in ["access_key", "sas_token", "connection_string"] {
            assert!(m.contains(&format!("`{key}` is written in the runbook")), "{m}");
        }
        assert!(m.contains("both set"), "{m}");
        assert_eq!(messages(json!({ "access_key": "{{ secrets.k }}", "connection_string": "UseDevelopmentStorage=true" })), "");
        assert!(messages(json!({ "endpoint": "127.0.0.1:10000" })).contains("not a URL"));
        assert!(messages(json!({ "endpoint": "ftp://x/y" })).contains("not an http(s) URL"));
        assert!(messages(json!({ "connection_string": "AccountName" })).contains("not a connection string"));
        assert!(messages(json!({ "use_emulator": true, "access_key": "{{ secrets.k }}" })).contains("with `use_emulator: true`"));
    }
}
