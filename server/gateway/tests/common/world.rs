//! The world of the gateway's HTTP tests: team-a and team-b with disjoint
//! model allow-lists, a member and an owner of team-a, and JSON requests.

use app::model::{KeyScope, TeamRole};
use serde_json::{Value, json};
use sqlx::PgPool;

use super::gateway::{issue_key, member, team, user};

pub struct World {
    pub db: PgPool,
    pub team_a: uuid::Uuid,
    pub member: uuid::Uuid,
    pub owner: uuid::Uuid,
}

/// team-a may use llama3.2 only, team-b qwen2.5:0.5b only; mia is a member
/// of team-a, olu its owner, bea the owner of team-b.
pub async fn world(db: PgPool) -> World {
    let team_a = team(&db, "team-a", Some(&["llama3.2"])).await;
    let team_b = team(&db, "team-b", Some(&["qwen2.5:0.5b"])).await;
    let member_id = user(&db, "mia", false).await;
    let owner = user(&db, "olu", false).await;
    let bea = user(&db, "bea", false).await;
    member(&db, team_a, member_id, TeamRole::Member).await;
    member(&db, team_a, owner, TeamRole::Owner).await;
    member(&db, team_b, bea, TeamRole::Owner).await;
    World {
        db,
        team_a,
        member: member_id,
        owner,
    }
}

pub async fn key(w: &World, scopes: &[KeyScope]) -> (uuid::Uuid, String) {
    issue_key(&w.db, "team-a", w.member, w.owner, scopes, None).await
}

pub fn chat(model: &str, stream: bool, prompt: &str) -> Value {
    json!({ "model": model, "stream": stream, "messages": [{ "role": "user", "content": prompt }] })
}

pub async fn post(url: &str, key: Option<&str>, body: &Value) -> reqwest::Response {
    let mut r = reqwest::Client::new().post(url).json(body);
    if let Some(k) = key {
        r = r.bearer_auth(k);
    }
    r.send().await.unwrap()
}
