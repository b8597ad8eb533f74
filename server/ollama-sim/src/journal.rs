//! What the simulator received: the last requests on Ollama's endpoints, each
//! with its head, how its body was framed and the body's bytes as they arrived,
//! so that a test can tell exactly what a proxy in front of it forwarded.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use axum::body::{Body, Bytes, HttpBody};
use axum::http::{HeaderMap, Version, header, request};
use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// Requests kept by default (`SIM_JOURNAL_LEN`).
pub const DEFAULT_JOURNAL_LEN: usize = 256;

/// Body bytes kept per request; the rest is counted in `body_len` only.
const BODY_KEPT: usize = 1024 * 1024;

/// Body bytes kept over the whole journal; the oldest requests go first.
const BODIES_KEPT: usize = 32 * 1024 * 1024;

/// Headers whose values are recorded (every header's name is).
const SELECTED: [header::HeaderName; 11] = [
    header::HOST,
    header::CONTENT_LENGTH,
    header::TRANSFER_ENCODING,
    header::CONTENT_TYPE,
    header::EXPECT,
    header::CONNECTION,
    header::TE,
    header::TRAILER,
    header::UPGRADE,
    header::ACCEPT_ENCODING,
    header::CONTENT_ENCODING,
];

/// How a request's body was delimited on the wire.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Framing {
    /// Neither `content-length` nor `transfer-encoding`: no body.
    None,
    /// `content-length` with this value.
    ContentLength(u64),
    /// `transfer-encoding: chunked`.
    Chunked,
}

/// How far a request's body got.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum BodyEnd {
    /// The head has come, the body is still arriving.
    Receiving,
    /// The body arrived whole, as framed.
    Complete,
    /// The body stopped short: the connection closed or its framing was broken.
    Cut {
        /// What the HTTP server said.
        error: String,
    },
    /// The body passed the simulator's 100 MiB limit (it answers 413).
    TooLarge,
}

/// One request as the simulator received it (`GET /sim/requests`).
///
/// In JSON the body is `body_base64`, and also `body` when it is UTF-8.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "WireRequest", from = "WireRequest")]
pub struct ReceivedRequest {
    /// Its place among every request the simulator has received, from 1.
    pub seq: u64,
    /// The method, as sent.
    pub method: String,
    /// The request target as sent: path and query, not normalised.
    pub target: String,
    /// `HTTP/1.0`, `HTTP/1.1`, …
    pub version: String,
    /// The values of the framing and connection headers (`host`,
    /// `content-length`, `transfer-encoding`, `content-type`, `expect`,
    /// `connection`, `te`, `trailer`, `upgrade`, `accept-encoding`,
    /// `content-encoding`), one pair per field line, in order. A value that is
    /// not UTF-8 is written with `\xNN` escapes.
    pub headers: Vec<(String, String)>,
    /// The name of every header field received, lower-case, one per line.
    pub header_names: Vec<String>,
    /// How the body was delimited.
    pub framing: Framing,
    /// The body's bytes as they arrived (chunked framing removed), up to 1 MiB.
    pub body: Bytes,
    /// Body bytes received in all, kept or not.
    pub body_len: u64,
    /// How far the body got.
    pub body_end: BodyEnd,
    /// Trailer fields of a chunked body.
    pub trailers: Vec<(String, String)>,
}

impl ReceivedRequest {
    /// The body as text, with invalid UTF-8 replaced.
    pub fn body_text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }

    /// The path of the target, without its query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }
}

/// [`ReceivedRequest`] as JSON.
#[derive(Clone, Serialize, Deserialize)]
struct WireRequest {
    seq: u64,
    method: String,
    target: String,
    version: String,
    headers: Vec<(String, String)>,
    header_names: Vec<String>,
    framing: Framing,
    #[serde(default, skip_deserializing)]
    body: Option<String>,
    body_base64: String,
    body_len: u64,
    body_end: BodyEnd,
    trailers: Vec<(String, String)>,
}

impl From<ReceivedRequest> for WireRequest {
    fn from(r: ReceivedRequest) -> Self {
        Self {
            seq: r.seq,
            method: r.method,
            target: r.target,
            version: r.version,
            headers: r.headers,
            header_names: r.header_names,
            framing: r.framing,
            body: std::str::from_utf8(&r.body).ok().map(str::to_owned),
            body_base64: base64::engine::general_purpose::STANDARD.encode(&r.body),
            body_len: r.body_len,
            body_end: r.body_end,
            trailers: r.trailers,
        }
    }
}

impl From<WireRequest> for ReceivedRequest {
    fn from(w: WireRequest) -> Self {
        let body = base64::engine::general_purpose::STANDARD
            .decode(w.body_base64.as_bytes())
            .unwrap_or_default();
        Self {
            seq: w.seq,
            method: w.method,
            target: w.target,
            version: w.version,
            headers: w.headers,
            header_names: w.header_names,
            framing: w.framing,
            body: Bytes::from(body),
            body_len: w.body_len,
            body_end: w.body_end,
            trailers: w.trailers,
        }
    }
}

/// The last requests received, oldest first, bounded in count and body bytes.
#[derive(Debug)]
pub(crate) struct Journal {
    capacity: usize,
    next_seq: AtomicU64,
    entries: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    requests: VecDeque<ReceivedRequest>,
    body_bytes: usize,
}

impl Journal {
    /// A journal keeping the last `capacity` requests (0: none).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            next_seq: AtomicU64::new(1),
            entries: Mutex::default(),
        }
    }

    /// The requests kept, oldest first.
    pub(crate) fn snapshot(&self) -> Vec<ReceivedRequest> {
        self.lock().requests.iter().cloned().collect()
    }

    /// Forgets every request kept; numbering goes on.
    pub(crate) fn clear(&self) {
        let mut entries = self.lock();
        entries.requests.clear();
        entries.body_bytes = 0;
    }

    /// Records the head of `parts` and reads its body whole (as Ollama's
    /// handlers do before they start), recording it as it ends; the body to
    /// hand on, holding the same bytes, or ending the same way.
    pub(crate) async fn receive(&self, parts: &request::Parts, body: Body) -> Body {
        if self.capacity == 0 {
            return body;
        }
        let seq = self.open(parts, framing(&parts.headers, &body));
        if body.is_end_stream() {
            self.close(seq, &[], BodyEnd::Complete, Vec::new());
            return body;
        }
        let mut body = body;
        let mut chunks: Vec<Bytes> = Vec::new();
        let mut received = 0usize;
        let mut trailers = Vec::new();
        loop {
            match poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
                None => break,
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => {
                        received += data.len();
                        chunks.push(data);
                        if received > crate::routes::BODY_LIMIT {
                            // The handler's extractor answers 413 on reading past the limit.
                            self.close(seq, &chunks, BodyEnd::TooLarge, trailers);
                            let held = futures_util::stream::iter(chunks.into_iter().map(Ok));
                            let rest =
                                futures_util::StreamExt::chain(held, body.into_data_stream());
                            return Body::from_stream(rest);
                        }
                    }
                    Err(frame) => {
                        if let Ok(fields) = frame.into_trailers() {
                            trailers = fields
                                .iter()
                                .map(|(name, value)| {
                                    (name.as_str().to_owned(), printable(value.as_bytes()))
                                })
                                .collect();
                        }
                    }
                },
                Some(Err(error)) => {
                    let end = BodyEnd::Cut {
                        error: error.to_string(),
                    };
                    self.close(seq, &chunks, end, trailers);
                    let held = chunks.into_iter().map(Ok);
                    let failed = std::iter::once(Err(error));
                    return Body::from_stream(futures_util::stream::iter(held.chain(failed)));
                }
            }
        }
        self.close(seq, &chunks, BodyEnd::Complete, trailers);
        match chunks.len() {
            0 => Body::empty(),
            1 => Body::from(chunks.pop().unwrap_or_default()),
            _ => Body::from(chunks.concat()),
        }
    }

    fn open(&self, parts: &request::Parts, framing: Framing) -> u64 {
        let seq = self.next_seq.fetch_add(1, Ordering::AcqRel);
        let headers = &parts.headers;
        let request = ReceivedRequest {
            seq,
            method: parts.method.as_str().to_owned(),
            target: parts
                .uri
                .path_and_query()
                .map_or_else(|| parts.uri.to_string(), |p| p.as_str().to_owned()),
            version: version(parts.version).to_owned(),
            headers: SELECTED
                .iter()
                .flat_map(|name| {
                    headers
                        .get_all(name)
                        .iter()
                        .map(|value| (name.as_str().to_owned(), printable(value.as_bytes())))
                })
                .collect(),
            header_names: headers
                .iter()
                .map(|(name, _)| name.as_str().to_owned())
                .collect(),
            framing,
            body: Bytes::new(),
            body_len: 0,
            body_end: BodyEnd::Receiving,
            trailers: Vec::new(),
        };
        let mut entries = self.lock();
        entries.requests.push_back(request);
        while entries.requests.len() > self.capacity {
            entries.evict_oldest();
        }
        seq
    }

    fn close(&self, seq: u64, chunks: &[Bytes], end: BodyEnd, trailers: Vec<(String, String)>) {
        let total: usize = chunks.iter().map(Bytes::len).sum();
        let mut kept = Vec::with_capacity(total.min(BODY_KEPT));
        for chunk in chunks {
            let room = BODY_KEPT - kept.len();
            kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if kept.len() == BODY_KEPT {
                break;
            }
        }
        let mut entries = self.lock();
        let Some(request) = entries.requests.iter_mut().rev().find(|r| r.seq == seq) else {
            return; // Already pushed out by newer requests.
        };
        request.body = Bytes::from(kept);
        request.body_len = u64::try_from(total).unwrap_or(u64::MAX);
        request.body_end = end;
        request.trailers = trailers;
        let added = request.body.len();
        entries.body_bytes += added;
        while entries.body_bytes > BODIES_KEPT && entries.requests.len() > 1 {
            entries.evict_oldest();
        }
    }

    fn lock(&self) -> MutexGuard<'_, Entries> {
        // Every update leaves the entries whole; a panic elsewhere cannot break them.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Entries {
    fn evict_oldest(&mut self) {
        if let Some(old) = self.requests.pop_front() {
            self.body_bytes -= old.body.len();
        }
    }
}

/// The framing hyper decoded the body with: it accepts `transfer-encoding`
/// only when `chunked` comes last, and then ignores `content-length`.
fn framing(headers: &HeaderMap, body: &Body) -> Framing {
    if headers.contains_key(header::TRANSFER_ENCODING) {
        Framing::Chunked
    } else if headers.contains_key(header::CONTENT_LENGTH) {
        Framing::ContentLength(body.size_hint().exact().unwrap_or_default())
    } else {
        Framing::None
    }
}

fn version(v: Version) -> &'static str {
    match v {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

/// `bytes` as text, with `\xNN` escapes where it is not UTF-8.
fn printable(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(_) => bytes.escape_ascii().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(method: &str, target: &str, headers: &[(&str, &str)]) -> request::Parts {
        let mut builder = axum::http::Request::builder().method(method).uri(target);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap().into_parts().0
    }

    #[tokio::test]
    async fn a_request_is_recorded_with_its_head_framing_and_body() {
        let journal = Journal::new(4);
        let head = parts(
            "POST",
            "/api/chat?x=1",
            &[("content-length", "5"), ("x-other", "y")],
        );
        let body = journal.receive(&head, Body::from("hello")).await;
        let passed_on = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        assert_eq!(passed_on, "hello");
        let [got] = journal.snapshot().try_into().unwrap();
        assert_eq!(got.seq, 1);
        assert_eq!(got.method, "POST");
        assert_eq!(got.target, "/api/chat?x=1");
        assert_eq!(got.path(), "/api/chat");
        assert_eq!(got.headers, [("content-length".into(), "5".into())]);
        assert_eq!(got.header_names, ["content-length", "x-other"]);
        assert_eq!(got.body, "hello");
        assert_eq!(got.body_len, 5);
        assert_eq!(got.body_end, BodyEnd::Complete);
        // `Body::from` has an exact size, as a content-length body does.
        assert_eq!(got.framing, Framing::ContentLength(5));
    }

    #[tokio::test]
    async fn only_the_last_requests_are_kept_and_clear_forgets_them() {
        let journal = Journal::new(2);
        for path in ["/a", "/b", "/c"] {
            let _ = journal
                .receive(&parts("GET", path, &[]), Body::empty())
                .await;
        }
        let kept: Vec<_> = journal
            .snapshot()
            .into_iter()
            .map(|r| (r.seq, r.target))
            .collect();
        assert_eq!(kept, [(2, "/b".to_owned()), (3, "/c".to_owned())]);
        assert_eq!(journal.snapshot()[0].framing, Framing::None);
        journal.clear();
        assert!(journal.snapshot().is_empty());
        let _ = journal
            .receive(&parts("GET", "/d", &[]), Body::empty())
            .await;
        assert_eq!(journal.snapshot()[0].seq, 4, "numbering goes on");
    }

    #[tokio::test]
    async fn a_body_cut_short_is_recorded_as_cut_and_still_fails_downstream() {
        let journal = Journal::new(2);
        let stream = futures_util::stream::iter([
            Ok(Bytes::from_static(b"par")),
            Err(std::io::Error::other(
                "connection closed before message completed",
            )),
        ]);
        let head = parts("POST", "/api/chat", &[("transfer-encoding", "chunked")]);
        let body = journal.receive(&head, Body::from_stream(stream)).await;
        assert!(axum::body::to_bytes(body, usize::MAX).await.is_err());
        let got = &journal.snapshot()[0];
        assert_eq!(got.framing, Framing::Chunked);
        assert_eq!(got.body, "par");
        assert!(
            matches!(&got.body_end, BodyEnd::Cut { error } if error.contains("closed")),
            "{got:?}"
        );
    }

    #[tokio::test]
    async fn requests_on_the_wire_are_served_at_sim_requests_until_a_reset() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let sim = crate::Sim::new(crate::SimConfig::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(crate::serve(listener, sim.clone()));
        let body = r#"{"name":"llama3.2"}"#;
        let (a, b) = body.split_at(4);
        // A chunked body with an extension and a trailer, then a pipelined sized one.
        let wire = format!(
            "POST /api/show HTTP/1.1\r\nhost: sim\r\ntransfer-encoding: chunked\r\n\r\n\
             {:x};ext=1\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\nx-t: 1\r\n\r\n\
             POST /api/show HTTP/1.1\r\nhost: sim\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            a.len(),
            b.len(),
            body.len()
        );
        let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
        socket.write_all(wire.as_bytes()).await.unwrap();
        let mut replies = String::new();
        socket.read_to_string(&mut replies).await.unwrap();
        assert_eq!(replies.matches("HTTP/1.1 200 OK").count(), 2, "{replies}");

        let url = format!("http://{addr}/sim/requests");
        let got: Vec<ReceivedRequest> = reqwest::get(&url).await.unwrap().json().await.unwrap();
        assert_eq!(got, sim.requests());
        let [chunked, sized] = got.try_into().unwrap();
        assert_eq!(chunked.framing, Framing::Chunked);
        assert_eq!(chunked.body, body);
        assert_eq!(chunked.trailers, [("x-t".to_owned(), "1".to_owned())]);
        assert_eq!(sized.framing, Framing::ContentLength(body.len() as u64));
        assert_eq!(sized.body, body);
        assert_eq!(sized.body_end, BodyEnd::Complete);
        assert!(
            sized
                .headers
                .contains(&("connection".into(), "close".into()))
        );
        assert_eq!(sim.stats().requests, 2, "/sim/requests is not counted");

        let reset = reqwest::Client::new()
            .post(format!("http://{addr}/sim/reset"))
            .send()
            .await
            .unwrap();
        assert_eq!(reset.status(), 204);
        assert!(sim.requests().is_empty());
    }

    #[test]
    fn json_carries_the_body_exactly_and_as_text_when_it_is_text() {
        let request = ReceivedRequest {
            seq: 7,
            method: "POST".into(),
            target: "/api/chat".into(),
            version: "HTTP/1.1".into(),
            headers: vec![("transfer-encoding".into(), printable(b"chunked\xC2\xA0"))],
            header_names: vec!["transfer-encoding".into()],
            framing: Framing::Chunked,
            body: Bytes::from_static(b"\xff\x00"),
            body_len: 2,
            body_end: BodyEnd::Complete,
            trailers: vec![],
        };
        let json = serde_json::to_value(&request).unwrap();
        assert_eq!(json["framing"], "chunked");
        assert_eq!(json["body_end"]["state"], "complete");
        assert_eq!(json["body"], serde_json::Value::Null);
        assert_eq!(json["headers"][0][1], "chunked\u{a0}");
        let back: ReceivedRequest = serde_json::from_value(json).unwrap();
        assert_eq!(back, request);
        assert_eq!(
            serde_json::to_value(Framing::ContentLength(5)).unwrap(),
            serde_json::json!({"content_length": 5})
        );
        assert_eq!(printable(b"5\x85"), "5\\x85");
    }
}
