//! What every request passes before a handler, and what every response carries.
//!
//! - `Host` must name this server: `localhost`, an IP address, or a name in `allowed_hosts`.
//!   A DNS-rebinding page (evil.example resolving to 127.0.0.1) sends its own name and gets
//!   421; an IP literal cannot be rebound, the page's origin is then that address.
//! - A write (any method but GET/HEAD) with an `Origin` must come from the page this server
//!   serves (the origin's host and port are the request's `Host`, or a name of
//!   `allowed_hosts`): another site's form or script gets 403. So does
//!   `Sec-Fetch-Site: cross-site`.
//! - A write's body is `Content-Type: application/json` (415 otherwise): a browser sends a
//!   cross-site `text/plain` or form POST without asking first, never a JSON one.
//! - Every response says `Content-Security-Policy`, `X-Frame-Options: DENY`,
//!   `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The page's policy: its own scripts, styles and API only, never framed.
pub(crate) const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The host names a request may name besides IP addresses.
pub(crate) struct Guard {
    /// `localhost` and the configured `allowed_hosts`, lower case, without ports.
    names: Vec<String>,
    /// The configured ones alone: an `Origin` naming one of them is the page behind a proxy.
    configured: Vec<String>,
}

impl Guard {
    pub(crate) fn new(allowed_hosts: &[String]) -> Guard {
        let configured: Vec<String> = allowed_hosts.iter().map(|h| name_of(h).to_string()).collect();
        let mut names = vec!["localhost".to_string()];
        names.extend(configured.iter().cloned());
        Guard { names, configured }
    }

    /// Whether a `Host` value (`name[:port]`) names this server.
    fn host_allowed(&self, host: &str) -> bool {
        let name = name_of(host);
        !name.is_empty() && (name.trim_matches(['[', ']']).parse::<IpAddr>().is_ok() || self.names.contains(&name))
    }

    /// Whether a write's `Origin` is the page this server serves.
    fn origin_allowed(&self, origin: &str, host: &str) -> bool {
        let origin = origin.to_ascii_lowercase();
        let Some(authority) = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")) else { return false };
        authority == host.to_ascii_lowercase() || self.configured.iter().any(|n| *n == name_of(authority))
    }
}

/// `Name.Example.:8080` → `name.example`; `[::1]:8080` → `[::1]`.
fn name_of(host: &str) -> String {
    let host = host.trim().to_ascii_lowercase();
    let name = if host.starts_with('[') {
        host.split_inclusive(']').next().unwrap_or_default().to_string()
    } else {
        match host.rsplit_once(':') {
            Some((n, port)) if port.chars().all(|c| c.is_ascii_digit()) => n.to_string(),
            _ => host,
        }
    };
    name.trim_end_matches('.').to_string()
}

/// A refusal: the status and what to do about it.
type Refusal = (StatusCode, String);

fn refuse(status: StatusCode, message: String) -> Refusal {
    (status, message)
}

fn header(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).map(|v| v.to_str().unwrap_or("\u{fffd}"))
}

/// Refuses what no legitimate client sends, before any handler sees it.
fn screen(guard: &Guard, method: &Method, headers: &HeaderMap) -> Result<(), Refusal> {
    let host = header(headers, header::HOST).unwrap_or_default();
    if !guard.host_allowed(host) {
        return Err(refuse(
            StatusCode::MISDIRECTED_REQUEST,
            format!(
                "this server does not answer to the host `{host}`; use its address, `localhost`, or add the name to `allowed_hosts:` in serve.yaml"
            ),
        ));
    }
    if *method == Method::GET || *method == Method::HEAD {
        return Ok(());
    }
    if let Some(origin) = header(headers, header::ORIGIN) {
        if !guard.origin_allowed(origin, host) {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                format!(
                    "a request from the page of `{origin}` may not change anything here; use this server's own page or the API with a token"
                ),
            ));
        }
    }
    if header(headers, header::HeaderName::from_static("sec-fetch-site")) == Some("cross-site") {
        return Err(refuse(StatusCode::FORBIDDEN, "a cross-site request may not change anything here".into()));
    }
    let ctype = header(headers, header::CONTENT_TYPE).unwrap_or_default();
    let media = ctype.split(';').next().unwrap_or_default().trim();
    if !media.eq_ignore_ascii_case("application/json") {
        let given = if ctype.is_empty() { "no Content-Type".to_string() } else { format!("`{ctype}`") };
        return Err(refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("{given}: send the body as JSON with `Content-Type: application/json` (`{{}}` when there is nothing to say)"),
        ));
    }
    Ok(())
}

/// The middleware: screens the request, and adds the security headers to whatever answers.
pub(crate) async fn check(State(guard): State<Arc<Guard>>, req: Request, next: Next) -> Response {
    let mut response = match screen(&guard, req.method(), req.headers()) {
        Ok(()) => next.run(req).await,
        Err((status, message)) => (status, axum::Json(json!({ "error": message }))).into_response(),
    };
    let h = response.headers_mut();
    h.entry(header::CONTENT_SECURITY_POLICY).or_insert(HeaderValue::from_static(CSP));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(header::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        h
    }

    fn status(guard: &Guard, method: Method, pairs: &[(&str, &str)]) -> u16 {
        screen(guard, &method, &headers(pairs)).map_or_else(|(s, _)| s.as_u16(), |()| 200)
    }

    #[test]
    fn hosts_that_name_this_server_and_names_that_do_not() {
        let g = Guard::new(&["Phoenix.Internal".to_string()]);
        for ok in ["127.0.0.1:8080", "localhost:8080", "LOCALHOST", "[::1]:8080", "10.0.0.7", "phoenix.internal:443", "phoenix.internal."] {
            assert_eq!(status(&g, Method::GET, &[("host", ok)]), 200, "{ok}");
        }
        for bad in ["evil.example:8080", "localhost.evil.example", "127.0.0.1.nip.io:8080", ""] {
            assert_eq!(status(&g, Method::GET, &[("host", bad)]), 421, "{bad}");
        }
        assert_eq!(status(&g, Method::GET, &[]), 421, "no Host at all");
    }

    #[test]
    fn writes_come_from_this_page_as_json() {
        let g = Guard::new(&["phoenix.internal".to_string()]);
        let json = ("content-type", "application/json; charset=utf-8");
        let host = ("host", "127.0.0.1:8080");
        assert_eq!(status(&g, Method::POST, &[host, json]), 200, "no Origin: a client that is not a browser");
        assert_eq!(status(&g, Method::POST, &[host, json, ("origin", "http://127.0.0.1:8080")]), 200);
        assert_eq!(status(&g, Method::POST, &[host, json, ("origin", "https://phoenix.internal")]), 200, "behind a proxy");
        assert_eq!(status(&g, Method::POST, &[host, json, ("origin", "http://evil.example")]), 403);
        assert_eq!(status(&g, Method::POST, &[host, json, ("origin", "http://127.0.0.1:9999")]), 403, "another port is another site");
        assert_eq!(status(&g, Method::POST, &[host, json, ("origin", "null")]), 403);
        assert_eq!(status(&g, Method::POST, &[host, json, ("sec-fetch-site", "cross-site")]), 403);
        assert_eq!(status(&g, Method::POST, &[host, ("content-type", "text/plain")]), 415);
        assert_eq!(status(&g, Method::POST, &[host, ("content-type", "application/x-www-form-urlencoded")]), 415);
        assert_eq!(status(&g, Method::POST, &[host]), 415);
        assert_eq!(
            status(&g, Method::GET, &[host, ("origin", "http://evil.example")]),
            200,
            "reads change nothing; CORS keeps the answer from the page"
        );
    }
}
