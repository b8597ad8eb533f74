//! The Ollama upstreams: one pooled HTTP/1.1 client (hyper, with rustls for
//! `https://` upstreams), the least-busy upstream chosen per request, and
//! in-flight counts that become `ollama_queue_depth`. Each upstream's
//! address is parsed once, at start-up, not per request.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::http::uri::{Authority, PathAndQuery, Scheme};
use axum::http::{Method, Request, Uri};
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use prometheus::IntGauge;

use super::metrics::GatewayMetrics;

/// The client every request to Ollama goes through.
pub type Client =
    hyper_util::client::legacy::Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// One Ollama server.
pub struct Upstream {
    /// `http://ollama:11434`, no trailing slash.
    pub base: String,
    scheme: Scheme,
    authority: Authority,
    /// A path the upstream is mounted under (`/ollama`), or empty.
    prefix: String,
    /// Basic credentials from the address, sent with every request.
    authorization: Option<axum::http::HeaderValue>,
    in_flight: AtomicUsize,
    parallel: usize,
    queue_gauge: IntGauge,
    in_flight_gauge: IntGauge,
}

/// All upstreams and the client that talks to them.
pub struct Upstreams {
    pub client: Client,
    connector: hyper_rustls::HttpsConnector<HttpConnector>,
    list: Vec<Arc<Upstream>>,
}

/// `Basic …` for an address's user and password, if it has them.
fn basic_auth(u: &url::Url) -> Option<axum::http::HeaderValue> {
    use base64::Engine as _;
    if u.username().is_empty() && u.password().is_none() {
        return None;
    }
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let pair = format!(
        "{}:{}",
        decode(u.username()),
        decode(u.password().unwrap_or(""))
    );
    let mut v = axum::http::HeaderValue::from_str(&format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    ))
    .ok()?;
    v.set_sensitive(true);
    Some(v)
}

fn client(connector: hyper_rustls::HttpsConnector<HttpConnector>) -> Client {
    // Ollama answers HTTP/1.1; no redirects are followed.
    hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(1024)
        .pool_timer(TokioTimer::new())
        .build(connector)
}

/// Holds a place on an upstream until dropped (the reply ended, or the
/// client went away).
pub struct Lease {
    pub upstream: Arc<Upstream>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let n = self.upstream.in_flight.fetch_sub(1, Ordering::AcqRel) - 1;
        self.upstream.update_gauges(n);
    }
}

impl Upstream {
    /// The address of `path_and_query` on this upstream.
    pub fn uri(&self, path_and_query: &str) -> Result<Uri, axum::http::Error> {
        let mut parts = axum::http::uri::Parts::default();
        parts.scheme = Some(self.scheme.clone());
        parts.authority = Some(self.authority.clone());
        parts.path_and_query = Some(if self.prefix.is_empty() {
            PathAndQuery::try_from(path_and_query)?
        } else {
            PathAndQuery::try_from(format!("{}{path_and_query}", self.prefix))?
        });
        Ok(Uri::from_parts(parts)?)
    }

    /// A request to this upstream.
    pub fn request(
        &self,
        method: Method,
        path_and_query: &str,
    ) -> Result<axum::http::request::Builder, axum::http::Error> {
        let mut rb = Request::builder()
            .method(method)
            .uri(self.uri(path_and_query)?);
        if let Some(a) = &self.authorization {
            rb = rb.header(axum::http::header::AUTHORIZATION, a.clone());
        }
        Ok(rb)
    }

    fn update_gauges(&self, in_flight: usize) {
        self.in_flight_gauge.set(in_flight as i64);
        self.queue_gauge
            .set(in_flight.saturating_sub(self.parallel) as i64);
    }
}

impl Upstreams {
    pub fn new(
        urls: Vec<url::Url>,
        parallel: usize,
        metrics: GatewayMetrics,
    ) -> anyhow::Result<Self> {
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(Duration::from_secs(5)));
        http.set_nodelay(true);
        http.enforce_http(false);
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        })
        .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = client(connector.clone());
        let list = urls
            .into_iter()
            .map(|mut u| {
                // Credentials in the address (http://user:pass@ollama) go in
                // an Authorization header, never in labels or usage rows.
                let authorization = basic_auth(&u);
                let _ = u.set_username("");
                let _ = u.set_password(None);
                let base = u.as_str().trim_end_matches('/').to_owned();
                let uri: Uri = base
                    .parse()
                    .map_err(|e| anyhow::anyhow!("gateway.upstreams: {base}: {e}"))?;
                let scheme = uri.scheme().cloned().unwrap_or(Scheme::HTTP);
                let authority = uri
                    .authority()
                    .cloned()
                    .ok_or_else(|| anyhow::anyhow!("gateway.upstreams: {base}: no host"))?;
                let prefix = uri.path().trim_end_matches('/').to_owned();
                Ok(Arc::new(Upstream {
                    queue_gauge: metrics.queue_depth.with_label_values(&[&base]),
                    in_flight_gauge: metrics.upstream_in_flight.with_label_values(&[&base]),
                    base,
                    scheme,
                    authority,
                    prefix,
                    authorization,
                    in_flight: AtomicUsize::new(0),
                    parallel,
                }))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        for u in &list {
            u.update_gauges(0);
        }
        Ok(Self {
            client,
            connector,
            list,
        })
    }

    /// A client with its own connection pool, for one worker thread: its
    /// connections are opened, and then driven, on that thread.
    pub fn new_client(&self) -> Client {
        client(self.connector.clone())
    }

    /// Takes a place on the least busy upstream.
    pub fn lease(&self) -> Lease {
        let upstream = self
            .list
            .iter()
            .min_by_key(|u| u.in_flight.load(Ordering::Acquire))
            .expect("at least one upstream (checked by the settings)")
            .clone();
        let n = upstream.in_flight.fetch_add(1, Ordering::AcqRel) + 1;
        upstream.update_gauges(n);
        Lease { upstream }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_addresses_are_parsed_once_and_keep_their_path() {
        let ups = Upstreams::new(
            vec![
                "http://127.0.0.1:11434".parse().unwrap(),
                "https://gpu.example:8443/ollama/".parse().unwrap(),
            ],
            4,
            GatewayMetrics::new(),
        )
        .unwrap();
        assert_eq!(
            ups.list[0].uri("/api/chat?x=1").unwrap().to_string(),
            "http://127.0.0.1:11434/api/chat?x=1"
        );
        assert_eq!(ups.list[1].base, "https://gpu.example:8443/ollama");
        assert_eq!(
            ups.list[1].uri("/v1/models").unwrap().to_string(),
            "https://gpu.example:8443/ollama/v1/models"
        );
        assert!(ups.list[0].authorization.is_none());
    }

    #[test]
    fn credentials_in_an_upstream_address_become_a_header_and_leave_the_labels() {
        let ups = Upstreams::new(
            vec!["http://corral:s%40cret@ollama:11434".parse().unwrap()],
            4,
            GatewayMetrics::new(),
        )
        .unwrap();
        let u = &ups.list[0];
        assert_eq!(u.base, "http://ollama:11434");
        assert_eq!(
            u.uri("/api/tags").unwrap().to_string(),
            "http://ollama:11434/api/tags"
        );
        let req = u
            .request(Method::GET, "/api/tags")
            .unwrap()
            .body(())
            .unwrap();
        // base64("corral:s@cret")
        assert_eq!(req.headers()["authorization"], "Basic Y29ycmFsOnNAY3JldA==");
        assert!(req.headers()["authorization"].is_sensitive());
    }
}
