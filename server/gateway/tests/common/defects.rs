//! What the wire-defect tests share: a chat request as sent on a socket,
//! and what reached `ollama-sim`, each request checked whole.

use ollama_sim::BodyEnd;

use super::wire::settled_requests;

pub const CHAT: &str =
    r#"{"model":"llama3.2","stream":false,"messages":[{"role":"user","content":"hi"}]}"#;

pub fn chat_request(secret: &str, body: &str) -> String {
    format!(
        "POST /api/chat HTTP/1.1\r\nhost: gw\r\nx-api-key: {secret}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// `(target, body)` of what ollama-sim received, each whole.
pub async fn received(sim: &ollama_sim::Sim) -> Vec<(String, Vec<u8>)> {
    let got = settled_requests(sim).await;
    for r in &got {
        assert_eq!(
            r.body_end,
            BodyEnd::Complete,
            "{} reached Ollama cut",
            r.target
        );
    }
    got.into_iter()
        .map(|r| (r.target, r.body.to_vec()))
        .collect()
}
