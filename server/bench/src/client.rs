//! A bare HTTP/1.1 client for the load: one keep-alive connection per task,
//! no pool, no retries, nothing between the measurement and the socket.

use std::net::SocketAddr;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// One request, built again for every send.
#[derive(Clone)]
pub struct Call {
    pub method: Method,
    pub path: &'static str,
    pub body: Bytes,
    /// Sent as `X-API-Key` when present.
    pub key: Option<HeaderValue>,
}

impl Call {
    /// `POST path` with a JSON body.
    pub fn post(path: &'static str, body: Bytes, key: Option<&str>) -> Self {
        Self {
            method: Method::POST,
            path,
            body,
            key: key.map(|k| HeaderValue::from_str(k).expect("a key is ASCII")),
        }
    }

    /// `GET path` without a key.
    pub fn get(path: &'static str) -> Self {
        Self {
            method: Method::GET,
            path,
            body: Bytes::new(),
            key: None,
        }
    }

    fn request(&self, host: &HeaderValue) -> Request<Full<Bytes>> {
        let mut b = Request::builder()
            .method(self.method.clone())
            .uri(self.path)
            .header(HOST, host);
        if !self.body.is_empty() {
            b = b.header(CONTENT_TYPE, "application/json");
        }
        if let Some(k) = &self.key {
            b = b.header("x-api-key", k);
        }
        b.body(Full::new(self.body.clone()))
            .expect("a valid request")
    }
}

/// One keep-alive connection; reopened if the server closed it. Dropping it
/// closes the socket at once.
pub struct Conn {
    addr: SocketAddr,
    host: HeaderValue,
    sender: SendRequest<Full<Bytes>>,
    task: JoinHandle<()>,
}

impl Conn {
    pub async fn open(addr: SocketAddr) -> anyhow::Result<Self> {
        let (sender, task) = connect(addr).await?;
        Ok(Self {
            addr,
            host: HeaderValue::from_str(&addr.to_string()).expect("an address is ASCII"),
            sender,
            task,
        })
    }

    /// Sends `call` and returns as soon as the response head is in.
    pub async fn send(&mut self, call: &Call) -> anyhow::Result<Response<Incoming>> {
        if self.sender.is_closed() || self.sender.ready().await.is_err() {
            self.task.abort();
            (self.sender, self.task) = connect(self.addr).await?;
        }
        self.sender
            .send_request(call.request(&self.host))
            .await
            .with_context(|| format!("request to {} failed", self.addr))
    }

    /// Sends `call` and reads the whole body, dropping it as it comes.
    pub async fn roundtrip(&mut self, call: &Call) -> anyhow::Result<StatusCode> {
        let res = self.send(call).await?;
        let status = res.status();
        let mut body = res.into_body();
        while let Some(frame) = body.frame().await {
            frame.with_context(|| format!("reading a reply from {} failed", self.addr))?;
        }
        Ok(status)
    }

    /// Sends `call` and returns the status and the whole body.
    pub async fn fetch(&mut self, call: &Call) -> anyhow::Result<(StatusCode, Bytes)> {
        let res = self.send(call).await?;
        let status = res.status();
        let body = res
            .into_body()
            .collect()
            .await
            .with_context(|| format!("reading a reply from {} failed", self.addr))?
            .to_bytes();
        Ok((status, body))
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn connect(addr: SocketAddr) -> anyhow::Result<(SendRequest<Full<Bytes>>, JoinHandle<()>)> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("cannot connect to {addr}"))?;
    stream.set_nodelay(true)?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
    let task = tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok((sender, task))
}

/// Fails unless `status` is `want`.
pub fn expect_status(what: &str, status: StatusCode, want: StatusCode) -> anyhow::Result<()> {
    if status != want {
        bail!("{what}: expected {want}, got {status}");
    }
    Ok(())
}
