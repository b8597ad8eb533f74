//! Raw-socket helpers for the wire tests: a gateway to speak HTTP/1.1 to,
//! bytes written on a new connection, the responses read back split off
//! the wire, and the simulator's journal once it has settled.

use std::sync::Arc;
use std::time::Duration;

use app::model::{KeyScope, TeamRole};
use gateway::Gateway;
use sqlx::PgPool;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;
use uuid::Uuid;

use super::gateway::{issue_key, member, start_gateway, start_sim, team, user};

/// A gateway in front of an `ollama-sim` and an inference key of team-a
/// (which may use llama3.2), for tests that speak HTTP/1.1 on a raw socket.
pub struct WireWorld {
    /// The gateway's `host:port`.
    pub addr: String,
    /// The gateway's base URL.
    pub url: String,
    pub secret: String,
    pub key_id: Uuid,
    pub team: Uuid,
    pub sim: ollama_sim::Sim,
    pub gw: Arc<Gateway>,
    pub db: PgPool,
}

/// team-a, mia its member and olu its owner, mia's inference key, `sim`
/// started and a gateway in front of it with the `extra` settings.
pub async fn wire_world(
    db: PgPool,
    sim: ollama_sim::SimConfig,
    extra: &[(&str, &str)],
) -> WireWorld {
    let team_id = team(&db, "team-a", Some(&["llama3.2"])).await;
    let mia = user(&db, "mia", false).await;
    let olu = user(&db, "olu", false).await;
    member(&db, team_id, mia, TeamRole::Member).await;
    member(&db, team_id, olu, TeamRole::Owner).await;
    let (key_id, secret) = issue_key(&db, "team-a", mia, olu, &[KeyScope::Inference], None).await;
    let (sim_url, sim) = start_sim(sim).await;
    let (url, gw) = start_gateway(db.clone(), &sim_url, extra).await;
    WireWorld {
        addr: url.trim_start_matches("http://").to_owned(),
        url,
        secret,
        key_id,
        team: team_id,
        sim,
        gw,
        db,
    }
}

/// One HTTP/1.1 response read off the wire.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// Names lower-case, values lossily UTF-8.
    pub headers: Vec<(String, String)>,
    /// Decoded from its framing.
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What a connection gave back.
#[derive(Debug)]
pub struct Reply {
    pub bytes: Vec<u8>,
    /// The gateway closed the connection (or reset it).
    pub closed: bool,
}

impl Reply {
    /// The whole responses in it, in order (interim ones included).
    pub fn answers(&self) -> Vec<Answer> {
        answers(&self.bytes)
    }

    /// Their status codes.
    pub fn statuses(&self) -> Vec<u16> {
        self.answers().iter().map(|a| a.status).collect()
    }

    /// Its start, for messages.
    pub fn excerpt(&self) -> String {
        let text = String::from_utf8_lossy(&self.bytes);
        text.chars().take(400).collect()
    }
}

/// Splits `bytes` into the whole responses it holds; a response not yet
/// whole at the end is left out, and so is everything after a malformed one.
pub fn answers(mut bytes: &[u8]) -> Vec<Answer> {
    let mut out = Vec::new();
    loop {
        let mut fields = [httparse::EMPTY_HEADER; 64];
        let mut head = httparse::Response::new(&mut fields);
        let Ok(httparse::Status::Complete(n)) = head.parse(bytes) else {
            return out;
        };
        let status = head.code.unwrap_or_default();
        let headers: Vec<(String, String)> = head
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_ascii_lowercase(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect();
        bytes = &bytes[n..];
        let find = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let body = if (100..200).contains(&status) || status == 204 || status == 304 {
            Vec::new()
        } else if find("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            let mut data = Vec::new();
            loop {
                let Ok(httparse::Status::Complete((i, size))) = httparse::parse_chunk_size(bytes)
                else {
                    return out;
                };
                bytes = &bytes[i..];
                let Ok(size) = usize::try_from(size) else {
                    return out;
                };
                if size == 0 {
                    // Trailer lines, if any, up to the empty line.
                    loop {
                        let Some(end) = bytes.windows(2).position(|w| w == b"\r\n") else {
                            return out;
                        };
                        bytes = &bytes[end + 2..];
                        if end == 0 {
                            break;
                        }
                    }
                    break;
                }
                if bytes.len() < size + 2 {
                    return out;
                }
                data.extend_from_slice(&bytes[..size]);
                bytes = &bytes[size + 2..];
            }
            data
        } else if let Some(len) = find("content-length") {
            let Ok(len) = len.trim().parse::<usize>() else {
                return out;
            };
            if bytes.len() < len {
                return out;
            }
            let body = bytes[..len].to_vec();
            bytes = &bytes[len..];
            body
        } else {
            // Delimited by the close.
            std::mem::take(&mut bytes).to_vec()
        };
        out.push(Answer {
            status,
            headers,
            body,
        });
    }
}

/// Reads from `s` until the gateway closes the connection, or `limit` has
/// passed, or at least `want` whole responses have come and then `quiet`
/// has passed with nothing more.
pub async fn read_reply(
    s: &mut tokio::net::TcpStream,
    want: usize,
    quiet: Duration,
    limit: Duration,
) -> Reply {
    use tokio::io::AsyncReadExt as _;
    let start = std::time::Instant::now();
    let mut bytes = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let enough = want > 0 && answers(&bytes).len() >= want;
        let left = limit.saturating_sub(start.elapsed());
        let wait = if enough { quiet.min(left) } else { left };
        match tokio::time::timeout(wait, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                return Reply {
                    bytes,
                    closed: true,
                };
            }
            Ok(Ok(n)) => bytes.extend_from_slice(&buf[..n]),
            Err(_) => {
                return Reply {
                    bytes,
                    closed: false,
                };
            }
        }
    }
}

/// The simulator's journal once it has stopped changing: no body still
/// arriving and nothing new for 200 ms (or 3 s have passed).
pub async fn settled_requests(sim: &ollama_sim::Sim) -> Vec<ollama_sim::ReceivedRequest> {
    let start = std::time::Instant::now();
    let mut last = sim.requests();
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = sim.requests();
        let receiving = now
            .iter()
            .any(|r| r.body_end == ollama_sim::BodyEnd::Receiving);
        if (now == last && !receiving) || start.elapsed() > Duration::from_secs(3) {
            return now;
        }
        last = now;
    }
}

/// Writes `wire` on a new connection and reads the reply: up to `want`
/// responses, or the close.
pub async fn exchange(addr: &str, wire: &[u8], want: usize) -> Reply {
    exchange_quiet(addr, wire, want, Duration::from_millis(300)).await
}

/// [`exchange`], waiting `quiet` for more once `want` responses have come.
pub async fn exchange_quiet(addr: &str, wire: &[u8], want: usize, quiet: Duration) -> Reply {
    let mut s = TcpStream::connect(addr).await.unwrap();
    // The gateway may close before it has read everything: that is its right.
    let _ = s.write_all(wire).await;
    read_reply(&mut s, want, quiet, Duration::from_secs(10)).await
}
