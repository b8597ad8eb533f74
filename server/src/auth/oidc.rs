//! OpenID Connect sign-in against a Keycloak realm (or any conforming
//! issuer): discovery, authorization code + PKCE (S256) + state + nonce,
//! ID token validation (JWKS signature, issuer, audience, expiry, nonce),
//! userinfo for claims the ID token lacks, and RP-initiated logout.

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use app::domain::identity::Identity;
use app::model::{DependencyState, DependencyStatus};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreIdToken};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, LogoutRequest, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, PostLogoutRedirectUrl,
    ProviderMetadataWithLogout, RedirectUrl, Scope, TokenResponse,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tokio::sync::RwLock;
use tower_sessions::Session;

use super::pages::failure_page;
use super::{Auth, SESSION_AUTH, SessionAuth, safe_next, start_session};
use crate::{REQUEST_ID, error_chain};

/// Session key of a sign-in in progress.
const SESSION_FLOW: &str = "corral.oidc_flow";
/// How long discovered metadata (and its JWKS) is trusted before refetching.
const METADATA_TTL: Duration = Duration::from_secs(600);
/// A sign-in must come back from the IdP within this time.
const FLOW_TTL_SECS: i64 = 600;

/// The configured OpenID Provider.
pub struct Oidc {
    pub issuer: IssuerUrl,
    client_id: ClientId,
    client_secret: Option<SecretString>,
    scopes: Vec<String>,
    groups_claim: String,
    roles_claim: String,
    admin_role: String,
    http: openidconnect::reqwest::Client,
    metadata: RwLock<Option<(ProviderMetadataWithLogout, Instant)>>,
}

/// A sign-in between the redirect to the IdP and its return.
#[derive(Debug, Serialize, Deserialize)]
struct Flow {
    state: String,
    nonce: String,
    pkce_verifier: String,
    next: String,
    started_at: i64,
}

impl Oidc {
    pub fn new(
        settings: &crate::settings::OidcSettings,
        issuer: &url::Url,
    ) -> Result<Self, String> {
        let issuer = IssuerUrl::new(issuer.as_str().trim_end_matches('/').to_owned())
            .map_err(|e| format!("oidc.issuer (CORRAL_OIDC__ISSUER): {e}"))?;
        let http = openidconnect::reqwest::ClientBuilder::new()
            // Following redirects would expose the token endpoint to SSRF.
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        let mut scopes: Vec<String> = settings
            .scopes
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        scopes.retain(|s| s != "openid");
        Ok(Self {
            issuer,
            client_id: ClientId::new(settings.client_id.clone()),
            client_secret: settings.client_secret.clone(),
            scopes,
            groups_claim: settings.groups_claim.clone(),
            roles_claim: settings.roles_claim.clone(),
            admin_role: settings.admin_role.clone(),
            http,
            metadata: RwLock::new(None),
        })
    }

    /// The provider's metadata, discovered and cached.
    async fn metadata(&self) -> Result<ProviderMetadataWithLogout, String> {
        if let Some((m, at)) = self.metadata.read().await.as_ref()
            && at.elapsed() < METADATA_TTL
        {
            return Ok(m.clone());
        }
        let m = ProviderMetadataWithLogout::discover_async(self.issuer.clone(), &self.http)
            .await
            .map_err(|e| {
                format!(
                    "discovery at {} failed: {}",
                    self.issuer.as_str(),
                    error_chain(&e)
                )
            })?;
        *self.metadata.write().await = Some((m.clone(), Instant::now()));
        Ok(m)
    }

    fn client(
        &self,
        metadata: ProviderMetadataWithLogout,
        public_url: &str,
    ) -> Result<
        CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
        String,
    > {
        let redirect =
            RedirectUrl::new(format!("{public_url}/auth/callback")).map_err(|e| e.to_string())?;
        Ok(CoreClient::from_provider_metadata(
            metadata,
            self.client_id.clone(),
            self.client_secret
                .as_ref()
                .map(|s| ClientSecret::new(s.expose_secret().to_owned())),
        )
        .set_redirect_uri(redirect))
    }

    /// For the status page: can the IdP be discovered right now?
    pub async fn check(&self) -> DependencyStatus {
        let started = Instant::now();
        // Always a fresh discovery, so the page shows the live state.
        let result =
            ProviderMetadataWithLogout::discover_async(self.issuer.clone(), &self.http).await;
        let (state, detail) = match result {
            Ok(m) => {
                *self.metadata.write().await = Some((m, Instant::now()));
                (
                    DependencyState::Healthy,
                    format!("issuer {}", self.issuer.as_str()),
                )
            }
            Err(e) => (
                DependencyState::Down,
                format!("{}: {}", self.issuer.as_str(), error_chain(&e)),
            ),
        };
        DependencyStatus {
            id: "idp".into(),
            name: "Identity provider".into(),
            state,
            detail,
            latency_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// Reads a claim by dotted path (`realm_access.roles`) from JSON claims.
    fn claim<'a>(claims: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
        path.split('.').try_fold(claims, |v, k| v.get(k))
    }
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

/// `GET /auth/login`: redirects to the IdP's login form.
pub async fn login(
    State(auth): State<Arc<Auth>>,
    session: Session,
    Query(q): Query<LoginQuery>,
) -> Response {
    let Some(oidc) = &auth.oidc else {
        return failure_page(
            StatusCode::NOT_FOUND,
            "Sign-in with an identity provider is not configured",
            "Set oidc.issuer (CORRAL_OIDC__ISSUER) to a Keycloak realm URL.",
        );
    };
    let metadata = match oidc.metadata().await {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(error = %e, "IdP unavailable");
            return failure_page(
                StatusCode::BAD_GATEWAY,
                "The identity provider is unavailable",
                &e,
            );
        }
    };
    let client = match oidc.client(metadata, &auth.public_url) {
        Ok(c) => c,
        Err(e) => {
            return failure_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Sign-in is misconfigured",
                &e,
            );
        }
    };
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge);
    for s in &oidc.scopes {
        request = request.add_scope(Scope::new(s.clone()));
    }
    let (url, state, nonce) = request.url();
    let flow = Flow {
        state: state.secret().clone(),
        nonce: nonce.secret().clone(),
        pkce_verifier: verifier.secret().clone(),
        next: safe_next(q.next.as_deref()),
        started_at: time::OffsetDateTime::now_utc().unix_timestamp(),
    };
    if let Err(e) = session.insert(SESSION_FLOW, flow).await {
        tracing::warn!(error = %e, "session store unavailable");
        return failure_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Sign-in is unavailable",
            "PostgreSQL is unavailable; try again shortly.",
        );
    }
    Redirect::to(url.as_str()).into_response()
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /auth/callback`: validates what the IdP sent back and signs in.
/// Nothing is written unless every check passes.
pub async fn callback(
    State(crate::ServerState {
        app: app_state,
        auth,
        ..
    }): State<crate::ServerState>,
    session: Session,
    headers: axum::http::HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Response {
    let request_id = headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    match complete(&app_state.db, &auth, &session, q, request_id.as_deref()).await {
        Ok(next) => Redirect::to(&next).into_response(),
        Err((status, title, detail)) => {
            tracing::warn!(status = status.as_u16(), reason = %detail, "sign-in refused");
            failure_page(status, title, &detail)
        }
    }
}

type Failure = (StatusCode, &'static str, String);

async fn complete(
    db: &PgPool,
    auth: &Auth,
    session: &Session,
    q: CallbackQuery,
    request_id: Option<&str>,
) -> Result<String, Failure> {
    let refused = |detail: String| (StatusCode::UNAUTHORIZED, "Sign-in refused", detail);
    let oidc = auth.oidc.as_ref().ok_or((
        StatusCode::NOT_FOUND,
        "Sign-in with an identity provider is not configured",
        String::new(),
    ))?;
    // Whatever happens next, this flow cannot be replayed.
    let flow: Option<Flow> = session.remove(SESSION_FLOW).await.map_err(|_| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "Sign-in is unavailable",
            "PostgreSQL is unavailable; try again shortly.".to_owned(),
        )
    })?;
    if let Some(err) = q.error {
        return Err((
            StatusCode::UNAUTHORIZED,
            "The identity provider did not sign you in",
            format!("{err}: {}", q.error_description.unwrap_or_default()),
        ));
    }
    let flow = flow.ok_or((
        StatusCode::BAD_REQUEST,
        "Sign-in expired",
        "This sign-in was not started in this browser, or was already used. Start again."
            .to_owned(),
    ))?;
    if time::OffsetDateTime::now_utc().unix_timestamp() - flow.started_at > FLOW_TTL_SECS {
        return Err((
            StatusCode::BAD_REQUEST,
            "Sign-in expired",
            "It took more than 10 minutes. Start again.".to_owned(),
        ));
    }
    let state = q.state.unwrap_or_default();
    if !constant_time_eq(state.as_bytes(), flow.state.as_bytes()) {
        return Err((
            StatusCode::BAD_REQUEST,
            "Sign-in refused",
            "The state parameter does not match this browser's sign-in.".to_owned(),
        ));
    }
    let code = q.code.ok_or((
        StatusCode::BAD_REQUEST,
        "Sign-in refused",
        "The identity provider sent no authorization code.".to_owned(),
    ))?;

    let metadata = oidc.metadata().await.map_err(|e| {
        (
            StatusCode::BAD_GATEWAY,
            "The identity provider is unavailable",
            e,
        )
    })?;
    let end_session = metadata.additional_metadata().end_session_endpoint.clone();
    let userinfo_url = metadata.userinfo_endpoint().cloned();
    let client = oidc.client(metadata, &auth.public_url).map_err(|e| {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "Sign-in is misconfigured",
            e,
        )
    })?;
    let token = client
        .exchange_code(AuthorizationCode::new(code))
        .map_err(|e| {
            (
                StatusCode::BAD_GATEWAY,
                "The identity provider has no token endpoint",
                e.to_string(),
            )
        })?
        .set_pkce_verifier(PkceCodeVerifier::new(flow.pkce_verifier))
        .request_async(&oidc.http)
        .await
        .map_err(|e| {
            (
                StatusCode::BAD_GATEWAY,
                "The identity provider refused the code exchange",
                error_chain(&e),
            )
        })?;
    let id_token: &CoreIdToken = token
        .id_token()
        .ok_or_else(|| refused("The identity provider returned no ID token.".into()))?;
    let verifier = client.id_token_verifier();
    let claims = id_token
        .claims(&verifier, &Nonce::new(flow.nonce))
        .map_err(|e| refused(format!("The ID token is not valid: {}", error_chain(&e))))?;

    // The signature over the payload is verified: its extra claims can be read.
    let raw = id_token.to_string();
    let mut extra: serde_json::Value = raw
        .split('.')
        .nth(1)
        .and_then(|p| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .ok()
        })
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| refused("The ID token payload cannot be read.".into()))?;
    if Oidc::claim(&extra, &oidc.groups_claim).is_none()
        && let Some(userinfo) = userinfo_url
    {
        // Some realms put groups only in userinfo.
        let info: Option<serde_json::Value> = async {
            oidc.http
                .get(userinfo.url().as_str())
                .bearer_auth(token.access_token().secret())
                .send()
                .await
                .ok()?
                .error_for_status()
                .ok()?
                .bytes()
                .await
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
        }
        .await;
        if let Some(info) = info
            && info.get("sub").and_then(|s| s.as_str()) == Some(claims.subject().as_str())
            && let Some(g) = Oidc::claim(&info, &oidc.groups_claim)
        {
            extra[&oidc.groups_claim] = g.clone();
        }
    }
    let groups: Vec<String> = Oidc::claim(&extra, &oidc.groups_claim)
        .and_then(|g| g.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let is_admin = Oidc::claim(&extra, &oidc.roles_claim)
        .and_then(|r| r.as_array())
        .is_some_and(|a| {
            a.iter()
                .any(|r| r.as_str() == Some(oidc.admin_role.as_str()))
        });
    let username = claims
        .preferred_username()
        .map(|u| u.as_str().to_owned())
        .unwrap_or_else(|| claims.subject().as_str().to_owned());
    let display_name = claims
        .name()
        .and_then(|n| n.get(None))
        .map(|n| n.as_str().to_owned())
        .unwrap_or_else(|| username.clone());
    let identity = Identity {
        issuer: oidc.issuer.as_str().to_owned(),
        subject: claims.subject().as_str().to_owned(),
        username,
        display_name,
        email: claims.email().map(|e| e.as_str().to_owned()),
        groups,
        is_admin,
    };
    if let Err(app::model::AppError::Validation { field, message }) = identity.check_storable() {
        let claim = match field.as_str() {
            "username" if claims.preferred_username().is_some() => "preferred_username",
            "username" | "subject" => "sub",
            "display_name" => "name",
            "groups" => oidc.groups_claim.as_str(),
            "issuer" => "iss",
            other => other,
        };
        return Err((
            StatusCode::UNPROCESSABLE_ENTITY,
            "Sign-in refused",
            format!(
                "The identity provider's {claim} claim for you {message}. Ask the identity provider's administrator to correct it, then sign in again."
            ),
        ));
    }

    let unavailable = |_| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "Sign-in is unavailable",
            "PostgreSQL is unavailable; try again shortly.".to_owned(),
        )
    };
    let mut tx = db.begin().await.map_err(unavailable)?;
    let user = app::domain::identity::sign_in(&mut tx, &identity, request_id)
        .await
        .map_err(|e| {
            let e: app::model::AppError = e.into();
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "Sign-in failed",
                e.to_string(),
            )
        })?;
    tx.commit().await.map_err(unavailable)?;
    let keep_token = end_session.is_some().then_some(raw);
    start_session(session, user.id, keep_token)
        .await
        .map_err(|_| {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "Sign-in is unavailable",
                "PostgreSQL is unavailable; try again shortly.".to_owned(),
            )
        })?;
    tracing::info!(user = %user.username, "signed in");
    Ok(flow.next)
}

/// The IdP's end-session URL for RP-initiated logout, if it has one.
pub async fn logout_url(auth: &Auth, signed_in: &SessionAuth) -> Option<String> {
    let oidc = auth.oidc.as_ref()?;
    let id_token = signed_in.id_token.as_deref()?;
    let metadata = oidc.metadata().await.ok()?;
    let endpoint = metadata
        .additional_metadata()
        .end_session_endpoint
        .clone()?;
    let hint = CoreIdToken::from_str(id_token).ok()?;
    let back =
        PostLogoutRedirectUrl::new(format!("{}/signin?signed_out=1", auth.public_url)).ok()?;
    Some(
        LogoutRequest::from(endpoint)
            .set_id_token_hint(&hint)
            .set_client_id(oidc.client_id.clone())
            .set_post_logout_redirect_uri(back)
            .http_get_url()
            .to_string(),
    )
}

/// `POST /auth/logout`: ends Corral's session server-side, then the IdP's.
pub async fn logout(
    State(crate::ServerState {
        app: app_state,
        auth,
        ..
    }): State<crate::ServerState>,
    actor: Option<axum::Extension<app::domain::Actor>>,
    session: Session,
) -> Response {
    let signed_in: Option<SessionAuth> = session.get(SESSION_AUTH).await.ok().flatten();
    let _ = session.flush().await;
    if let Some(axum::Extension(actor)) = &actor {
        let user_id = actor.user.id.to_string();
        let recorded = app::domain::audit::record(
            &app_state.db,
            app::domain::audit::By::Actor(actor),
            app::domain::audit::Record {
                action: "user.signed_out",
                target_kind: "user",
                target_id: &user_id,
                team_id: None,
                before: None,
                after: None,
            },
        )
        .await;
        if let Err(e) = recorded {
            tracing::warn!(error = %e, "could not record the sign-out in the audit log");
        }
    }
    let idp = match &signed_in {
        Some(s) => logout_url(&auth, s).await,
        None => None,
    };
    Redirect::to(&idp.unwrap_or_else(|| "/signin?signed_out=1".to_owned())).into_response()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
