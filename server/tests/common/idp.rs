//! The project's real test IdP (end2end/idp, npm oidc-provider), started on a
//! free loopback port for one test, and a browser-like walk through its
//! login form.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};

use super::TestApp;

pub struct Idp {
    child: Child,
    pub base: String,
    pub issuer: String,
    http: reqwest::Client,
    _dir: tempdir::Dir,
}

/// Tells apart the IdPs one test process starts.
static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

mod tempdir {
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Idp {
    /// Starts the IdP; panics with a clear message (and the IdP's own
    /// output) if Node or its packages are missing (scripts/setup --test
    /// installs them) or it does not come up. Node binds a port the kernel
    /// chooses and writes it to a file, so no other process can take the
    /// port in between; a start that fails for any reason is tried again
    /// (three times in all) before the test fails.
    pub async fn start() -> Self {
        let idp_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../end2end/idp");
        assert!(
            idp_dir.join("node_modules/oidc-provider").is_dir(),
            "the test IdP's npm packages are missing: run scripts/setup --test"
        );
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let mut failures = Vec::new();
        for attempt in 1..=3 {
            let tmp = std::env::temp_dir().join(format!(
                "corral-idp-{}-{}-{attempt}",
                std::process::id(),
                NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&tmp).unwrap();
            let dir = tempdir::Dir(tmp.clone());
            let log_path = tmp.join("idp.log");
            let port_file = tmp.join("port");
            let log = std::fs::File::create(&log_path).unwrap();
            let mut child = Command::new("node")
                .arg("server.mjs")
                .current_dir(&idp_dir)
                .env("OP_PORT", "0")
                .env("OP_PORT_FILE", &port_file)
                .env("OP_TEST_CONTROLS", "1")
                .env("OP_JWKS", tmp.join("jwks.json"))
                .env("OP_USERS", idp_dir.join("users.json"))
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("node runs the test IdP");
            let started = Instant::now();
            match Self::wait_ready(&http, &mut child, &port_file).await {
                Ok(base) => {
                    return Self {
                        child,
                        issuer: format!("{base}/realms/corral"),
                        base,
                        http,
                        _dir: dir,
                    };
                }
                Err(why) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let output = std::fs::read_to_string(&log_path).unwrap_or_default();
                    failures.push(format!(
                        "attempt {attempt}: {why} after {:.1} s; its output:\n{output}",
                        started.elapsed().as_secs_f64()
                    ));
                }
            }
        }
        panic!("the test IdP did not start:\n{}", failures.join("\n"));
    }

    /// Waits (up to 90 s: several of these start at once on a loaded 2-core
    /// CI box) for the port file and then a 200 from `/health`, each probe
    /// with its own short timeout so no single request can hang the wait.
    async fn wait_ready(
        http: &reqwest::Client,
        child: &mut Child,
        port_file: &std::path::Path,
    ) -> Result<String, String> {
        let deadline = Instant::now() + Duration::from_secs(90);
        let mut base = None;
        loop {
            if base.is_none()
                && let Ok(port) = std::fs::read_to_string(port_file)
            {
                base = Some(format!("http://127.0.0.1:{}", port.trim()));
            }
            if let Some(base) = &base
                && http
                    .get(format!("{base}/health"))
                    .timeout(Duration::from_secs(3))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
            {
                return Ok(base.clone());
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("it exited with {status}"));
            }
            if Instant::now() >= deadline {
                return Err(match base {
                    None => "it did not bind a port".to_string(),
                    Some(base) => format!("{base}/health did not answer 200"),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Replaces a user's groups in the IdP.
    pub async fn set_groups(&self, username: &str, groups: &[&str]) {
        let r = self
            .http
            .put(format!("{}/test/users/{username}/groups", self.base))
            .json(&groups)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }

    /// The next ID token the IdP issues is broken in this way.
    pub async fn tamper_next_id_token(&self, mode: &str) {
        let r = self
            .http
            .post(format!("{}/test/tamper", self.base))
            .json(&serde_json::json!({ "mode": mode }))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }

    /// Walks Corral's sign-in as a browser would: `/auth/login` → the IdP's
    /// login form → back to `/auth/callback`. Returns the callback's
    /// response, its body, and the session cookie to use afterwards.
    pub async fn sign_in(
        &self,
        app: &TestApp,
        username: &str,
        password: &str,
    ) -> (axum::http::Response<Body>, String, String) {
        let (res, _) = app.get("/auth/login?next=/teams").await;
        assert_eq!(
            res.status(),
            StatusCode::SEE_OTHER,
            "login redirects to the IdP"
        );
        let cookie = session_cookie(&res).expect("a session cookie holds the sign-in in progress");
        let mut url = location(&res);
        assert!(url.starts_with(&self.issuer), "{url}");
        assert!(url.contains("code_challenge_method=S256"), "PKCE: {url}");
        assert!(url.contains("nonce="), "nonce: {url}");

        // A fresh cookie jar: each sign-in is its own browser, so the IdP's
        // single sign-on never silently reuses another person's session.
        let browser = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let mut logged_in = false;
        for _ in 0..10 {
            if url.starts_with("http://127.0.0.1:3000/auth/callback") {
                let path = url.trim_start_matches("http://127.0.0.1:3000");
                let req = Request::get(path)
                    .header(header::COOKIE, &cookie)
                    .body(Body::empty())
                    .unwrap();
                let (res, body) = app.send(req).await;
                let rotated = session_cookie(&res);
                if res.status() == StatusCode::SEE_OTHER {
                    assert!(
                        rotated.as_ref().is_some_and(|c| *c != cookie),
                        "signing in gives a new session id"
                    );
                }
                let cookie = rotated.unwrap_or(cookie);
                return (res, body, cookie);
            }
            let res = browser.get(&url).send().await.unwrap();
            if res.status().is_redirection() {
                url = absolute(
                    &self.base,
                    res.headers()[header::LOCATION].to_str().unwrap(),
                );
                continue;
            }
            let page = res.text().await.unwrap();
            assert!(!logged_in, "the IdP showed a page after login: {page}");
            let action = page
                .split("action=\"")
                .nth(1)
                .and_then(|s| s.split('"').next())
                .unwrap_or_else(|| panic!("no login form in {page}"))
                .to_owned();
            let res = browser
                .post(absolute(&self.base, &action))
                .form(&[("username", username), ("password", password)])
                .send()
                .await
                .unwrap();
            assert!(res.status().is_redirection(), "login accepted");
            logged_in = true;
            url = absolute(
                &self.base,
                res.headers()[header::LOCATION].to_str().unwrap(),
            );
        }
        panic!("the sign-in never came back to Corral");
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn absolute(base: &str, url: &str) -> String {
    if url.starts_with("http") {
        url.to_owned()
    } else {
        format!("{base}{url}")
    }
}

pub fn location(res: &axum::http::Response<Body>) -> String {
    res.headers()[header::LOCATION].to_str().unwrap().to_owned()
}

/// `corral_session=…` from a response's Set-Cookie, ready for a Cookie header.
pub fn session_cookie(res: &axum::http::Response<Body>) -> Option<String> {
    res.headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("corral_session="))
        .map(|v| v.split(';').next().unwrap().to_owned())
}
