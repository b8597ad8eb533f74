//! Open connections to the upstreams, kept between requests: one pool
//! per upstream in each [`Client`], the most recently used connection
//! taken first, those unused past [`IDLE_TIMEOUT`] closed. A request goes
//! on a kept connection if one is still open, else on a new one.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::Method;
use tokio::io::AsyncWriteExt as _;

use super::connection::{Reply, Wire};
use super::{Outgoing, Upstream, UpstreamError};

/// How long an unused connection is kept.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Unused connections kept per upstream and client.
const MAX_IDLE: usize = 1024;
/// How often unused connections past [`IDLE_TIMEOUT`] are closed.
pub const PRUNE_EVERY: Duration = Duration::from_secs(30);
/// A request up to this size is written in one piece with its head.
const ONE_WRITE_BYTES: usize = 256 * 1024;

/// Open connections to the upstreams, reused request after request.
#[derive(Clone)]
pub struct Client(Arc<Pools>);

pub(super) struct Pools {
    tls: tokio_rustls::TlsConnector,
    /// Unused connections per upstream, the most recently used last.
    idle: Vec<Mutex<VecDeque<Idle>>>,
}

struct Idle {
    wire: Wire,
    since: Instant,
}

impl Idle {
    fn expired(&self, now: Instant) -> bool {
        now.duration_since(self.since) > IDLE_TIMEOUT
    }
}

impl Pools {
    /// Keeps `wire`, whose reply was read whole, for the next request to
    /// upstream `index`.
    pub(super) fn put_back(&self, index: usize, wire: Wire) {
        let Ok(mut idle) = self.idle[index].lock() else {
            return;
        };
        let now = Instant::now();
        while idle.front().is_some_and(|i| i.expired(now)) {
            idle.pop_front();
        }
        if idle.len() < MAX_IDLE {
            idle.push_back(Idle { wire, since: now });
        }
    }
}

impl Client {
    pub(super) fn new(tls: tokio_rustls::TlsConnector, upstreams: usize) -> Self {
        Self(Arc::new(Pools {
            tls,
            idle: (0..upstreams).map(|_| Mutex::default()).collect(),
        }))
    }

    /// Sends `req` to `upstream` on an open connection, or on a new one,
    /// and reads the reply's head. A connection Ollama closed meanwhile is
    /// passed over; a request that reached Ollama whole is never sent twice.
    pub async fn send(
        &self,
        upstream: &Upstream,
        req: &Outgoing<'_>,
    ) -> Result<Reply, UpstreamError> {
        let mut head = Vec::new();
        upstream.encode(req, &mut head);
        // A large body is written after the head, not copied behind it.
        let body_apart = head.len() > ONE_WRITE_BYTES;
        if body_apart {
            head.truncate(head.len() - req.body.len());
        }
        let head_request = *req.method == Method::HEAD;
        let receive = |wire: Wire| wire.receive(self.0.clone(), upstream.index, head_request);
        while let Some(mut wire) = self.checkout(upstream.index) {
            // Written only in part, a request is not one Ollama can answer,
            // so it may go on another connection.
            if wire.io.write_all(&head).await.is_err() {
                continue;
            }
            if body_apart && wire.io.write_all(req.body).await.is_err() {
                continue;
            }
            // TLS holds records back until flushed.
            if wire.io.flush().await.is_err() {
                continue;
            }
            return receive(wire).await;
        }
        let mut wire = Wire::connect(upstream, &self.0.tls).await?;
        wire.io.write_all(&head).await?;
        if body_apart {
            wire.io.write_all(req.body).await?;
        }
        wire.io.flush().await?;
        receive(wire).await
    }

    /// The most recently used connection that is still open.
    fn checkout(&self, index: usize) -> Option<Wire> {
        let mut idle = self.0.idle[index].lock().ok()?;
        let now = Instant::now();
        while let Some(mut i) = idle.pop_back() {
            if !i.expired(now) && i.wire.idle_and_open() {
                return Some(i.wire);
            }
        }
        None
    }

    /// Closes connections unused for longer than the idle timeout, and
    /// forgets those Ollama closed.
    pub fn prune(&self) {
        let now = Instant::now();
        for pool in &self.0.idle {
            if let Ok(mut idle) = pool.lock() {
                idle.retain_mut(|i| !i.expired(now) && i.wire.idle_and_open());
            }
        }
    }

    /// [`Client::prune`], every `period`, forever.
    pub async fn prune_every(self, period: Duration) {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.prune();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use bytes::{Bytes, BytesMut};
    use tokio::io::AsyncReadExt as _;

    use super::super::Upstreams;
    use super::super::tests::get;
    use super::*;
    use crate::metrics::GatewayMetrics;

    /// How the test server answers.
    #[derive(Clone, Copy)]
    enum Answer {
        /// 100,000 bytes with a `content-length`.
        Sized,
        /// Three lines, chunked, as Ollama streams.
        Chunked,
    }

    /// A listener on a free loopback port, and its `http://` URL.
    async fn loopback() -> (tokio::net::TcpListener, url::Url) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap())
            .parse()
            .unwrap();
        (listener, url)
    }

    /// An HTTP/1.1 server (hyper's) on loopback giving `answer` to
    /// everything; returns its address and how many connections it has
    /// accepted.
    async fn counting_server(keep_alive: bool, answer: Answer) -> (url::Url, Arc<AtomicUsize>) {
        let (listener, url) = loopback().await;
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |_req| async move {
                        let body = match answer {
                            Answer::Sized => {
                                axum::body::Body::from(Bytes::from_static(&[b'x'; 100_000]))
                            }
                            Answer::Chunked => axum::body::Body::from_stream(
                                futures_util::stream::iter((0..3).map(|i| {
                                    Ok::<_, std::convert::Infallible>(format!("{{\"n\":{i}}}\n"))
                                })),
                            ),
                        };
                        Ok::<_, std::convert::Infallible>(axum::http::Response::new(body))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(keep_alive)
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        (url, accepted)
    }

    fn idle(client: &Client) -> usize {
        client.0.idle[0].lock().unwrap().len()
    }

    #[tokio::test]
    async fn a_connection_is_reused_after_a_whole_reply_and_closed_after_a_cut_one() {
        let (url, accepted) = counting_server(true, Answer::Sized).await;
        let ups = Upstreams::new(vec![url], 4, GatewayMetrics::new()).unwrap();
        let client = ups.new_client();
        let u = &ups.list[0];
        for _ in 0..3 {
            let reply = client.send(u, &get("/api/tags")).await.unwrap();
            assert_eq!(reply.status, 200);
            assert_eq!(reply.read_to_end().await.unwrap().len(), 100_000);
        }
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            1,
            "one connection for three whole replies"
        );
        // A reply dropped half read takes its connection with it.
        let reply = client.send(u, &get("/api/tags")).await.unwrap();
        drop(reply);
        assert_eq!(idle(&client), 0);
        let reply = client.send(u, &get("/api/tags")).await.unwrap();
        assert_eq!(reply.read_to_end().await.unwrap().len(), 100_000);
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        client.prune();
        assert_eq!(idle(&client), 1, "a fresh connection stays");
    }

    #[tokio::test]
    async fn a_connection_is_reused_right_after_a_streamed_reply() {
        let (url, accepted) = counting_server(true, Answer::Chunked).await;
        let ups = Upstreams::new(vec![url], 4, GatewayMetrics::new()).unwrap();
        let client = ups.new_client();
        let u = &ups.list[0];
        for _ in 0..5 {
            let mut reply = client.send(u, &get("/api/chat")).await.unwrap();
            let mut body = BytesMut::new();
            while !std::future::poll_fn(|cx| reply.poll_data(cx, &mut body))
                .await
                .unwrap()
            {}
            assert_eq!(&body[..], b"{\"n\":0}\n{\"n\":1}\n{\"n\":2}\n");
            assert_eq!(idle(&client), 1, "back in the pool as the body ends");
        }
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            1,
            "one connection for five streams"
        );
    }

    #[tokio::test]
    async fn a_connection_that_says_close_is_not_kept() {
        let (url, accepted) = counting_server(false, Answer::Sized).await;
        let ups = Upstreams::new(vec![url], 4, GatewayMetrics::new()).unwrap();
        let client = ups.new_client();
        let u = &ups.list[0];
        for _ in 0..3 {
            let reply = client.send(u, &get("/api/tags")).await.unwrap();
            reply.read_to_end().await.unwrap();
            assert_eq!(idle(&client), 0);
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
    }

    /// A server that answers one request per connection as if it kept the
    /// connection (no `connection: close`), then closes it; returns its
    /// address and how many requests reached it whole.
    async fn closing_server() -> (url::Url, Arc<AtomicUsize>) {
        let (listener, url) = loopback().await;
        let requests = Arc::new(AtomicUsize::new(0));
        let count = requests.clone();
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                let count = count.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while !buf.ends_with(b"\r\n\r\n") {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    count.fetch_add(1, Ordering::SeqCst);
                    let _ = stream
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                        .await;
                });
            }
        });
        (url, requests)
    }

    #[tokio::test]
    async fn a_request_goes_on_a_new_connection_when_ollama_closed_the_old_one() {
        let (url, requests) = closing_server().await;
        let ups = Upstreams::new(vec![url], 4, GatewayMetrics::new()).unwrap();
        let client = ups.new_client();
        let u = &ups.list[0];
        for i in 1..=3 {
            let reply = client.send(u, &get("/api/tags")).await.unwrap();
            assert_eq!(&reply.read_to_end().await.unwrap()[..], b"ok");
            assert_eq!(idle(&client), 1, "kept: nothing said otherwise");
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert_eq!(requests.load(Ordering::SeqCst), i, "each request sent once");
        }
        client.prune();
        assert_eq!(idle(&client), 0, "closed connections are forgotten");
    }

    #[tokio::test]
    async fn an_upstream_that_refuses_connections_is_a_connect_error() {
        let (listener, url) = loopback().await;
        drop(listener);
        let ups = Upstreams::new(vec![url], 4, GatewayMetrics::new()).unwrap();
        let u = &ups.list[0];
        let Err(e) = ups.new_client().send(u, &get("/api/tags")).await else {
            panic!("a reply from a closed port");
        };
        assert!(e.is_connect(), "{e}");
        assert!(e.to_string().starts_with("cannot connect"), "{e}");
    }

    #[tokio::test]
    async fn a_reply_cut_short_is_an_error_and_its_connection_is_not_kept() {
        let (listener, url) = loopback().await;
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut chunk = [0u8; 1024];
            let _ = stream.read(&mut chunk).await;
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n")
                .await;
        });
        let ups = Upstreams::new(vec![url], 4, GatewayMetrics::new()).unwrap();
        let client = ups.new_client();
        let reply = client.send(&ups.list[0], &get("/api/chat")).await.unwrap();
        let e = reply.read_to_end().await.unwrap_err();
        assert!(matches!(e, UpstreamError::Closed), "{e}");
        assert_eq!(idle(&client), 0);
    }

    /// A server that answers every request on a connection with `reply`
    /// and keeps the connection; returns its address and how many
    /// connections it has accepted.
    async fn scripted_server(reply: &'static [u8]) -> (url::Url, Arc<AtomicUsize>) {
        let (listener, url) = loopback().await;
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    loop {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            buf.drain(..end + 4);
                            if stream.write_all(reply).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        (url, accepted)
    }

    #[tokio::test]
    async fn a_reply_in_a_coding_other_than_chunked_is_refused_and_its_connection_closed() {
        let (url, accepted) = scripted_server(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        )
        .await;
        let ups = Upstreams::new(vec![url], 4, GatewayMetrics::new()).unwrap();
        let client = ups.new_client();
        for n in 1..=2 {
            let Err(e) = client.send(&ups.list[0], &get("/api/chat")).await else {
                panic!("a gzip reply was read");
            };
            assert!(matches!(e, UpstreamError::Wire(_)), "{e}");
            assert!(e.to_string().contains("\"gzip, chunked\""), "{e}");
            assert_eq!(idle(&client), 0);
            assert_eq!(
                accepted.load(Ordering::SeqCst),
                n,
                "a new connection each time"
            );
        }
    }

    #[tokio::test]
    async fn a_bad_chunk_size_is_an_error_and_its_connection_is_not_kept() {
        let (url, _) = scripted_server(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\x0c\r\nhello\r\n0\r\n\r\n",
        )
        .await;
        let ups = Upstreams::new(vec![url], 4, GatewayMetrics::new()).unwrap();
        let client = ups.new_client();
        let reply = client.send(&ups.list[0], &get("/api/chat")).await.unwrap();
        let e = reply.read_to_end().await.unwrap_err();
        assert!(matches!(e, UpstreamError::Wire(_)), "{e}");
        assert_eq!(idle(&client), 0);
    }

    #[tokio::test]
    async fn a_reply_after_an_informational_one_is_read_and_its_connection_kept() {
        let (url, accepted) = scripted_server(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
        )
        .await;
        let ups = Upstreams::new(vec![url], 4, GatewayMetrics::new()).unwrap();
        let client = ups.new_client();
        for _ in 0..2 {
            let reply = client.send(&ups.list[0], &get("/api/tags")).await.unwrap();
            assert_eq!(reply.status, 200);
            assert_eq!(&reply.read_to_end().await.unwrap()[..], b"ok");
            assert_eq!(idle(&client), 1);
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }
}
