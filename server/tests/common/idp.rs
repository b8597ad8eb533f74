//! The project's real test IdP (end2end/idp, npm oidc-provider), started on a
//! free loopback port for one test, and a browser-like walk through its
//! login form.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
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
    /// installs them) or it does not come up. A port taken between choosing
    /// it and Node binding it is retried on another.
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
        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let tmp =
                std::env::temp_dir().join(format!("corral-idp-{port}-{}", std::process::id()));
            std::fs::create_dir_all(&tmp).unwrap();
            let dir = tempdir::Dir(tmp.clone());
            let log_path = tmp.join("idp.log");
            let log = std::fs::File::create(&log_path).unwrap();
            let mut child = Command::new("node")
                .arg("server.mjs")
                .current_dir(&idp_dir)
                .env("OP_PORT", port.to_string())
                .env("OP_TEST_CONTROLS", "1")
                .env("OP_JWKS", tmp.join("jwks.json"))
                .env("OP_USERS", idp_dir.join("users.json"))
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("node runs the test IdP");
            let base = format!("http://127.0.0.1:{port}");
            // Generous: six of these start at once on a loaded 2-core CI box.
            let deadline = Instant::now() + Duration::from_secs(90);
            let outcome = loop {
                if http
                    .get(format!("{base}/health"))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
                {
                    break Ok(());
                }
                if let Ok(Some(status)) = child.try_wait() {
                    break Err(format!("exited with {status}"));
                }
                if Instant::now() >= deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break Err("did not answer /health within 90 s".to_string());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            };
            match outcome {
                Ok(()) => {
                    return Self {
                        child,
                        issuer: format!("{base}/realms/corral"),
                        base,
                        http,
                        _dir: dir,
                    };
                }
                Err(why) => {
                    let output = std::fs::read_to_string(&log_path).unwrap_or_default();
                    if output.contains("EADDRINUSE") && attempt < 5 {
                        continue;
                    }
                    panic!("test IdP on {base} {why}; its output:\n{output}");
                }
            }
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
