//! The request-smuggling harness shared by `smuggling.rs` and
//! `smuggling_chunks.rs`: cases of framing, the requests they are made of,
//! and each case run on a fresh connection.
//!
//! Every case is judged by what reached Ollama, read from the simulator's
//! journal: either the gateway refused it (a 4xx or 5xx) and closed the
//! connection, and nothing reached Ollama; or Ollama received exactly the
//! requests the client framed, each whole, with exactly the body meant, and
//! no other. Most cases carry a second request (`GET /api/version` with the
//! key) where a wrong reading of the framing would find one, so a gateway
//! that misreads forwards it, or forwards a body that is not the one meant.
//! The carrier is `GET /api/tags`, whose body the gateway passes on
//! unparsed, so that whatever framing it settles on shows in the journal.

use std::time::Duration;

use ollama_sim::BodyEnd;
use sqlx::PgPool;

use super::gateway::fast_sim;
use super::wire::{WireWorld, exchange_quiet, settled_requests, wire_world};

/// One way of framing a request, and what Ollama may receive for it.
pub struct Case {
    name: String,
    wire: Vec<u8>,
    /// What Ollama must receive if the gateway serves the case: `(target,
    /// body)` of each request, in order.
    meant: Vec<(&'static str, Vec<u8>)>,
    /// Whether refusing it (and closing) is right too.
    may_refuse: bool,
}

impl Case {
    /// Invalid framing: it must be refused.
    pub fn refused(name: impl Into<String>, wire: Vec<u8>) -> Self {
        Self {
            name: name.into(),
            wire,
            meant: Vec::new(),
            may_refuse: true,
        }
    }

    /// Framing that may be refused, or read one way only: as `/api/tags`
    /// with `body`.
    pub fn tags_or_refused(name: impl Into<String>, wire: Vec<u8>, body: &[u8]) -> Self {
        Self {
            name: name.into(),
            wire,
            meant: vec![("/api/tags", body.to_vec())],
            may_refuse: true,
        }
    }

    /// Valid framing that must be served as `meant`.
    pub fn served(
        name: impl Into<String>,
        wire: Vec<u8>,
        meant: Vec<(&'static str, Vec<u8>)>,
    ) -> Self {
        Self {
            name: name.into(),
            wire,
            meant,
            may_refuse: false,
        }
    }
}

/// The pieces cases are made of, for one key.
pub struct Parts {
    pub secret: String,
}

impl Parts {
    /// The request a wrong reading would find: it reaches Ollama if the
    /// gateway takes it for one.
    pub fn smuggled(&self) -> Vec<u8> {
        format!(
            "GET /api/version HTTP/1.1\r\nhost: gw\r\nx-api-key: {}\r\n\r\n",
            self.secret
        )
        .into_bytes()
    }

    /// The head of the carrier, `GET /api/tags` with the key, with `fields`
    /// (whole lines, each ending in CRLF, or whatever a case needs) before
    /// the empty line.
    pub fn head(&self, fields: &[u8]) -> Vec<u8> {
        [
            b"GET /api/tags HTTP/1.1\r\nhost: gw\r\nx-api-key: ".as_slice(),
            self.secret.as_bytes(),
            b"\r\n",
            fields,
            b"\r\n",
        ]
        .concat()
    }

    pub fn request(&self, fields: &[u8], body: &[u8]) -> Vec<u8> {
        [self.head(fields), body.to_vec()].concat()
    }
}

/// `data` as one chunk and the last chunk.
pub fn chunked(data: &[u8]) -> Vec<u8> {
    [
        format!("{:x}\r\n", data.len()).as_bytes(),
        data,
        b"\r\n0\r\n\r\n",
    ]
    .concat()
}

/// The length of `data`'s chunk-size line, which a `content-length` that
/// stops short covers.
pub fn size_line(data: &[u8]) -> usize {
    format!("{:x}\r\n", data.len()).len()
}

pub fn cl(n: usize) -> Vec<u8> {
    format!("content-length: {n}\r\n").into_bytes()
}

pub fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// Runs the cases one after another on fresh connections and fails with
/// every case that went wrong.
pub async fn check(w: &WireWorld, cases: Vec<Case>) {
    let total = cases.len();
    let mut failures = Vec::new();
    for case in &cases {
        if let Err(why) = run(w, case).await {
            failures.push(format!("- {}: {why}", case.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {total} cases went wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

async fn run(w: &WireWorld, case: &Case) -> Result<(), String> {
    w.sim.reset();
    let reply = exchange_quiet(
        &w.addr,
        &case.wire,
        case.meant.len().max(1),
        Duration::from_millis(500),
    )
    .await;
    let got = settled_requests(&w.sim).await;
    let statuses = reply.statuses();
    if got.is_empty() {
        if !case.may_refuse {
            return Err(format!(
                "refused ({statuses:?}), but it is valid and must be served: {}",
                reply.excerpt()
            ));
        }
        let Some(&first) = statuses.first() else {
            return Err(format!(
                "no reply within 10 s (closed: {}): {}",
                reply.closed,
                reply.excerpt()
            ));
        };
        if !(400..600).contains(&first) {
            return Err(format!("answered {first} without reaching Ollama"));
        }
        if !reply.closed {
            return Err(format!(
                "refused with {first}, but the connection stayed open"
            ));
        }
        return Ok(());
    }
    let seen: Vec<(String, Vec<u8>)> = got
        .iter()
        .map(|r| (r.target.clone(), r.body.to_vec()))
        .collect();
    let meant: Vec<(String, Vec<u8>)> = case
        .meant
        .iter()
        .map(|(t, b)| ((*t).to_owned(), b.clone()))
        .collect();
    if seen != meant {
        // The key is left out of what is shown.
        let show = |v: &[(String, Vec<u8>)]| {
            v.iter()
                .map(|(t, b)| {
                    let body = String::from_utf8_lossy(b).replace(&w.secret, "<key>");
                    format!("{t} {body:?}")
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(format!(
            "Ollama received [{}], but the client meant {} (replies {statuses:?})",
            show(&seen),
            if meant.is_empty() {
                "nothing: it must be refused".to_owned()
            } else {
                format!("[{}]", show(&meant))
            }
        ));
    }
    if let Some(bad) = got.iter().find(|r| r.body_end != BodyEnd::Complete) {
        return Err(format!("{} reached Ollama {:?}", bad.target, bad.body_end));
    }
    Ok(())
}

pub async fn world(db: PgPool) -> (WireWorld, Parts) {
    let w = wire_world(db, fast_sim(), &[]).await;
    let parts = Parts {
        secret: w.secret.clone(),
    };
    (w, parts)
}
