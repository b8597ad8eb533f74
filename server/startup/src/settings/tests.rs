//! The settings' rules, each with the message it gives.

use super::*;

fn load(vars: &[(&str, &str)]) -> Result<Settings, SettingsError> {
    Settings::load_from(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
}

#[test]
fn defaults_are_the_local_profile_on_loopback() {
    let s = load(&[]).unwrap();
    assert_eq!(s.profile, Profile::Local);
    assert_eq!(s.server.port, 3000);
    assert!(s.dev_sign_in());
}

#[test]
fn a_port_that_is_not_a_number_names_the_setting() {
    let e = load(&[("CORRAL_SERVER__PORT", "abc")]).unwrap_err().0;
    assert!(e.contains("server.port"), "{e}");
    assert!(e.contains("CORRAL_SERVER__PORT"), "{e}");
    assert!(!e.contains('\n'), "one line: {e}");
}

#[test]
fn unknown_settings_are_refused() {
    let e = load(&[("CORRAL_SERVER__PROT", "3000")]).unwrap_err().0;
    assert!(
        e.starts_with("unknown setting server.prot (CORRAL_SERVER__PROT) in the environment"),
        "{e}"
    );
}

#[test]
fn production_without_issuer_or_session_secret_names_both() {
    let e = load(&[("CORRAL_PROFILE", "production")]).unwrap_err().0;
    assert!(e.contains("oidc.issuer"), "{e}");
    assert!(e.contains("session.secret"), "{e}");
}

#[test]
fn production_refuses_plain_http_issuer_and_dev_sign_in() {
    let e = load(&[
        ("CORRAL_PROFILE", "production"),
        ("CORRAL_OIDC__ISSUER", "http://kc.example/realms/corral"),
        ("CORRAL_SESSION__SECRET", "0123456789abcdef0123456789abcdef"),
        ("CORRAL_DATABASE__URL", "postgres://db/corral"),
        ("CORRAL_AUTH__DEV_SIGN_IN", "true"),
    ])
    .unwrap_err()
    .0;
    assert!(e.contains("https://"), "{e}");
    assert!(e.contains("dev_sign_in"), "{e}");
}

#[test]
fn production_turns_the_development_sign_in_off() {
    let s = load(&[
        ("CORRAL_PROFILE", "production"),
        ("CORRAL_OIDC__ISSUER", "https://kc.example/realms/corral"),
        ("CORRAL_SESSION__SECRET", "0123456789abcdef0123456789abcdef"),
        ("CORRAL_DATABASE__URL", "postgres://db/corral"),
        ("CORRAL_KEYS__PEPPER", "fedcba9876543210fedcba9876543210"),
    ])
    .unwrap();
    assert!(!s.dev_sign_in());
    assert!(!s.sim_enabled());
}

#[test]
fn production_requires_a_key_pepper_and_refuses_the_simulator() {
    let e = load(&[
        ("CORRAL_PROFILE", "production"),
        ("CORRAL_SIM__ENABLED", "true"),
    ])
    .unwrap_err()
    .0;
    assert!(e.contains("keys.pepper"), "{e}");
    assert!(e.contains("sim.enabled"), "{e}");
}

#[test]
fn the_gateway_in_production_needs_no_sign_in_settings() {
    let vars = [
        ("CORRAL_PROFILE", "production"),
        ("CORRAL_DATABASE__URL", "postgres://db/corral"),
        (
            "CORRAL_KEYS__PEPPER",
            "a-pepper-of-at-least-thirty-two-bytes!",
        ),
    ];
    let owned = || vars.iter().map(|(k, v)| (k.to_string(), v.to_string()));
    assert!(Settings::load_for(Binary::Gateway, owned()).is_ok());
    let e = Settings::load_for(Binary::Portal, owned()).unwrap_err().0;
    assert!(
        e.contains("oidc.issuer") && e.contains("session.secret"),
        "{e}"
    );
    // What it does need is still asked for.
    let e = Settings::load_for(Binary::Gateway, owned().take(2))
        .unwrap_err()
        .0;
    assert!(e.contains("keys.pepper"), "{e}");
}

#[test]
fn gateway_upstreams_are_a_comma_separated_list_of_urls() {
    let s = load(&[(
        "CORRAL_GATEWAY__UPSTREAMS",
        "http://ollama-0:11434, http://ollama-1:11434",
    )])
    .unwrap();
    assert_eq!(s.upstreams().unwrap().len(), 2);
    let e = load(&[("CORRAL_GATEWAY__UPSTREAMS", "ollama:11434")])
        .unwrap_err()
        .0;
    assert!(e.contains("CORRAL_GATEWAY__UPSTREAMS"), "{e}");
    let e = load(&[("CORRAL_KEYS__PEPPER", "short")]).unwrap_err().0;
    assert!(e.contains("keys.pepper"), "{e}");
}

#[test]
fn secrets_can_come_from_files() {
    let dir = std::env::temp_dir().join(format!("corral-settings-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("secret");
    std::fs::write(&file, "s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t\n").unwrap();
    let s = load(&[("CORRAL_SESSION__SECRET_FILE", file.to_str().unwrap())]).unwrap();
    assert_eq!(
        s.session.secret.unwrap().expose_secret(),
        "s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t"
    );
}

#[test]
fn a_short_session_secret_is_refused() {
    let e = load(&[("CORRAL_SESSION__SECRET", "short")]).unwrap_err().0;
    assert!(e.contains("session.secret"), "{e}");
}

#[test]
fn the_kubernetes_settings_are_checked_and_named() {
    let e = load(&[("CORRAL_CLUSTER__NAMESPACE", "Not_A_Name")]).unwrap_err();
    assert!(
        e.0.contains("cluster.namespace (CORRAL_CLUSTER__NAMESPACE)"),
        "{}",
        e.0
    );
    let e = load(&[("CORRAL_CLUSTER__AUTOSCALER", "-hpa")]).unwrap_err();
    assert!(e.0.contains("cluster.autoscaler"), "{}", e.0);
    let e = load(&[("CORRAL_CLUSTER__OLLAMA_PORT", "0")]).unwrap_err();
    assert!(e.0.contains("cluster.ollama_port"), "{}", e.0);
    let e = load(&[
        ("CORRAL_CLUSTER__DRIVER", "kubernetes"),
        ("CORRAL_CLUSTER__KUBECONFIG", "/nonexistent/kubeconfig"),
    ])
    .unwrap_err();
    assert!(
        e.0.contains("cluster.kubeconfig (CORRAL_CLUSTER__KUBECONFIG)")
            && e.0.contains("/nonexistent/kubeconfig"),
        "{}",
        e.0
    );
    let e = load(&[("CORRAL_OPERATIONS__RECONCILE_SECS", "0")]).unwrap_err();
    assert!(e.0.contains("operations.reconcile_secs"), "{}", e.0);
    let s = load(&[
        ("CORRAL_CLUSTER__DRIVER", "kubernetes"),
        ("CORRAL_CLUSTER__NAMESPACE", "llm"),
    ])
    .unwrap();
    assert_eq!(s.cluster.namespace.as_deref(), Some("llm"));
    assert_eq!(s.cluster.ollama_port, 11434);
}
