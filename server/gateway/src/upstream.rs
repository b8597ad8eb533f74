//! The Ollama upstreams: the least-busy upstream chosen per request,
//! in-flight counts that become `ollama_queue_depth`, and what a request
//! to one is. Each upstream's address is parsed once, at start-up, not
//! per request.
//!
//! Connections are HTTP/1.1 (rustls for `https://` upstreams), kept open
//! between requests in a [`Client`] (`client.rs`): one per gateway worker
//! thread, so a connection is opened, used and driven on one thread. The
//! request task itself writes the request and reads the reply
//! (`connection.rs`; [`super::wire`] says what the bytes mean): no
//! connection task, no channel between the two, and a stream's pieces are
//! taken from the socket as they come.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::http::{HeaderValue, Method};
use prometheus::IntGauge;

use super::metrics::GatewayMetrics;
use super::wire::{RequestOut, WireError};

mod client;
mod connection;

pub use client::{Client, PRUNE_EVERY};
pub use connection::Reply;

/// One Ollama server.
pub struct Upstream {
    /// `http://ollama:11434`, no trailing slash.
    pub base: String,
    /// Its place in [`Upstreams`], and in each client's pools.
    index: usize,
    /// What connections are opened to.
    host: String,
    port: u16,
    /// The name the TLS certificate must have, for `https://`.
    tls: Option<rustls::pki_types::ServerName<'static>>,
    /// The `Host` header of every request.
    host_header: HeaderValue,
    /// A path the upstream is mounted under (`/ollama`), or empty.
    prefix: String,
    /// Basic credentials from the address, sent with every request.
    authorization: Option<HeaderValue>,
    in_flight: AtomicUsize,
    parallel: usize,
    queue_gauge: IntGauge,
    in_flight_gauge: IntGauge,
}

/// All upstreams, and what opens TLS connections to them.
pub struct Upstreams {
    /// The client of the gateway inside `corral` (one runtime, many threads).
    pub client: Client,
    tls: tokio_rustls::TlsConnector,
    list: Vec<Arc<Upstream>>,
}

/// `Basic …` for an address's user and password, if it has them.
fn basic_auth(u: &url::Url) -> Option<HeaderValue> {
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
    let mut v = HeaderValue::from_str(&format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    ))
    .ok()?;
    v.set_sensitive(true);
    Some(v)
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

/// A request for an upstream: what the client asked, less what the
/// gateway keeps to itself (the client's key, its other headers).
pub struct Outgoing<'a> {
    pub method: &'a Method,
    /// Path and query as the client sent them; the upstream's prefix is
    /// put in front.
    pub path_and_query: &'a str,
    pub content_type: Option<&'a HeaderValue>,
    pub accept: Option<&'a HeaderValue>,
    pub body: &'a [u8],
}

impl Upstream {
    /// `req` as bytes for this upstream: its path prefix, `Host`, and
    /// credentials if the address had them.
    fn encode(&self, req: &Outgoing<'_>, out: &mut Vec<u8>) {
        let joined;
        let target = if self.prefix.is_empty() {
            req.path_and_query
        } else {
            joined = format!("{}{}", self.prefix, req.path_and_query);
            &joined
        };
        let mut headers: [(&str, &HeaderValue); 3] = [("", &self.host_header); 3];
        let mut n = 0;
        for (name, value) in [
            ("authorization", self.authorization.as_ref()),
            ("content-type", req.content_type),
            ("accept", req.accept),
        ] {
            if let Some(v) = value {
                headers[n] = (name, v);
                n += 1;
            }
        }
        RequestOut {
            method: req.method,
            target,
            host: &self.host_header,
            headers: &headers[..n],
            body: req.body,
        }
        .encode(out);
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
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        })
        .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config));
        let list = urls
            .into_iter()
            .enumerate()
            .map(|(index, mut u)| {
                // Credentials in the address (http://user:pass@ollama) go in
                // an Authorization header, never in labels or usage rows.
                let authorization = basic_auth(&u);
                let _ = u.set_username("");
                let _ = u.set_password(None);
                let base = u.as_str().trim_end_matches('/').to_owned();
                let bad = |what: &str| anyhow::anyhow!("gateway.upstreams: {base}: {what}");
                let secure = match u.scheme() {
                    "http" => false,
                    "https" => true,
                    other => return Err(bad(&format!("scheme {other} (http or https)"))),
                };
                let host = match u.host().ok_or_else(|| bad("no host"))? {
                    url::Host::Domain(d) => d.to_owned(),
                    url::Host::Ipv4(ip) => ip.to_string(),
                    url::Host::Ipv6(ip) => ip.to_string(),
                };
                let port = u.port_or_known_default().ok_or_else(|| bad("no port"))?;
                let tls = secure
                    .then(|| rustls::pki_types::ServerName::try_from(host.clone()))
                    .transpose()
                    .map_err(|e| bad(&e.to_string()))?;
                // `host:port` as the address wrote it ([…] for IPv6).
                let authority = match u.port() {
                    Some(p) => format!("{}:{p}", u.host_str().unwrap_or_default()),
                    None => u.host_str().unwrap_or_default().to_owned(),
                };
                let host_header =
                    HeaderValue::from_str(&authority).map_err(|e| bad(&e.to_string()))?;
                let prefix = u.path().trim_end_matches('/').to_owned();
                Ok(Arc::new(Upstream {
                    queue_gauge: metrics.queue_depth.with_label_values(&[&base]),
                    in_flight_gauge: metrics.upstream_in_flight.with_label_values(&[&base]),
                    base,
                    index,
                    host,
                    port,
                    tls,
                    host_header,
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
            client: Client::new(tls.clone(), list.len()),
            tls,
            list,
        })
    }

    /// A client with connections of its own, for one worker thread: they
    /// are opened, and then driven, on that thread.
    pub fn new_client(&self) -> Client {
        Client::new(self.tls.clone(), self.list.len())
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

/// Why a request did not get (all of) its reply from Ollama.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("connection failed: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("Ollama closed the connection before its reply ended")]
    Closed,
}

impl UpstreamError {
    pub fn is_connect(&self) -> bool {
        matches!(self, Self::Connect(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `u` writes for `GET path`.
    fn written(u: &Upstream, path: &str) -> String {
        let mut out = Vec::new();
        u.encode(&get(path), &mut out);
        String::from_utf8(out).unwrap()
    }

    pub(super) fn get(path: &str) -> Outgoing<'_> {
        Outgoing {
            method: &Method::GET,
            path_and_query: path,
            content_type: None,
            accept: None,
            body: b"",
        }
    }

    #[test]
    fn upstream_addresses_are_parsed_once_and_keep_their_path() {
        let ups = Upstreams::new(
            vec![
                "http://127.0.0.1:11434".parse().unwrap(),
                "https://gpu.example:8443/ollama/".parse().unwrap(),
                "http://[::1]:11434".parse().unwrap(),
            ],
            4,
            GatewayMetrics::new(),
        )
        .unwrap();
        assert_eq!(
            written(&ups.list[0], "/api/chat?x=1"),
            "GET /api/chat?x=1 HTTP/1.1\r\nhost: 127.0.0.1:11434\r\n\r\n"
        );
        assert_eq!(
            (ups.list[0].host.as_str(), ups.list[0].port),
            ("127.0.0.1", 11434)
        );
        assert!(ups.list[0].tls.is_none());
        assert_eq!(ups.list[1].base, "https://gpu.example:8443/ollama");
        assert_eq!(
            written(&ups.list[1], "/v1/models"),
            "GET /ollama/v1/models HTTP/1.1\r\nhost: gpu.example:8443\r\n\r\n"
        );
        assert!(ups.list[1].tls.is_some());
        assert_eq!(
            (ups.list[2].host.as_str(), ups.list[2].port),
            ("::1", 11434)
        );
        assert!(written(&ups.list[2], "/").contains("host: [::1]:11434\r\n"));
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
        // base64("corral:s@cret")
        assert_eq!(
            written(u, "/api/tags"),
            "GET /api/tags HTTP/1.1\r\nhost: ollama:11434\r\n\
             authorization: Basic Y29ycmFsOnNAY3JldA==\r\n\r\n"
        );
        assert!(u.authorization.as_ref().unwrap().is_sensitive());
    }
}
