//! The settings the Kubernetes manifests pass are the ones Corral accepts:
//! every overlay is rendered with `kubectl kustomize`, and each Corral
//! container's `CORRAL_*` environment (its `*_FILE` secrets replaced by
//! temporary files, after checking that a mounted Secret provides them) is
//! loaded by the settings parser the binaries use. An unknown (misspelt)
//! setting, a missing required one or a bad value fails, naming the
//! container. The settings are then held against the rest of the render:
//! ports, the spool volume, the grace periods, Ollama's parallel slots, the
//! workload the cluster driver manages and its models volume.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use startup::Settings;
use startup::settings::{ClusterDriver, ModelsVolume};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `kubectl kustomize` of a directory, as JSON objects.
fn render(dir: &Path) -> Vec<Value> {
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .output()
        .unwrap_or_else(|e| panic!("kubectl is needed (scripts/setup --test installs it): {e}"));
    assert!(
        out.status.success(),
        "kubectl kustomize {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    parse(&String::from_utf8(out.stdout).expect("UTF-8"))
}

fn parse(yaml: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|doc| {
            let v: serde_yaml::Value = serde::Deserialize::deserialize(doc).expect("YAML");
            serde_json::to_value(v).expect("YAML as JSON")
        })
        .filter(|v| !v.is_null())
        .collect()
}

fn overlay(name: &str) -> Vec<Value> {
    render(&repo().join("k8s/overlays").join(name))
}

/// Production with the component that shares one models volume.
fn production_shared_models() -> Vec<Value> {
    let dir = tempdir("shared-models");
    let k8s = repo().join("k8s").canonicalize().unwrap();
    // kustomize wants relative paths to other kustomizations.
    let rel = relative(&dir, &k8s);
    std::fs::write(
        dir.join("kustomization.yaml"),
        format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n\
             resources: [{rel}/overlays/production]\ncomponents: [{rel}/components/shared-models]\n"
        ),
    )
    .unwrap();
    render(&dir)
}

fn relative(from: &Path, to: &Path) -> String {
    let from = from.canonicalize().unwrap();
    let ups = from.components().count() - 1;
    format!(
        "{}{}",
        "../".repeat(ups),
        to.strip_prefix("/").unwrap().display()
    )
}

fn tempdir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "corral-k8s-env-{what}-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn find<'a>(objs: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    objs.iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
}

fn pod_spec(o: &Value) -> &Value {
    &o["spec"]["template"]["spec"]
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// What a Corral container is: the portal, the gateway or the migration.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Role {
    Portal,
    Gateway,
    Migrate,
}

struct Loaded {
    role: Role,
    settings: Settings,
    workload: String,
    container: Value,
    pod: Value,
}

/// Every Corral container of a render, its settings loaded; or every
/// problem found, each naming the container.
fn load_all(objs: &[Value]) -> Result<Vec<Loaded>, Vec<String>> {
    let mut loaded = Vec::new();
    let mut problems = Vec::new();
    let secrets = tempdir("secrets");
    for o in objs
        .iter()
        .filter(|o| matches!(str_of(&o["kind"]), "Deployment" | "Job"))
    {
        let pod = pod_spec(o);
        for c in pod["containers"].as_array().into_iter().flatten() {
            if !str_of(&c["image"]).starts_with("ghcr.io/corral/corral:") {
                continue;
            }
            let workload = format!("{} {}", str_of(&o["kind"]), str_of(&o["metadata"]["name"]));
            let where_ = format!("{workload}, container {}", str_of(&c["name"]));
            let command: Vec<&str> = c["command"]
                .as_array()
                .into_iter()
                .flatten()
                .map(str_of)
                .collect();
            let args: Vec<&str> = c["args"]
                .as_array()
                .into_iter()
                .flatten()
                .map(str_of)
                .collect();
            let role = match (command.as_slice(), args.as_slice()) {
                (["corral-gateway"], []) => Role::Gateway,
                ([], ["migrate"]) => Role::Migrate,
                ([], []) => Role::Portal,
                other => {
                    problems.push(format!("{where_}: unknown command {other:?}"));
                    continue;
                }
            };
            match container_env(pod, c, &secrets, &where_) {
                Err(mut e) => problems.append(&mut e),
                Ok(vars) => match Settings::load_for(
                    if role == Role::Gateway {
                        startup::Binary::Gateway
                    } else {
                        startup::Binary::Portal
                    },
                    vars,
                ) {
                    Ok(settings) => loaded.push(Loaded {
                        role,
                        settings,
                        workload: workload.clone(),
                        container: c.clone(),
                        pod: pod.clone(),
                    }),
                    Err(e) => problems.push(format!("{where_}: Corral refuses its settings: {e}")),
                },
            }
        }
    }
    if problems.is_empty() {
        Ok(loaded)
    } else {
        Err(problems)
    }
}

/// The container's CORRAL_* variables; each `*_FILE` must be a file that a
/// mounted Secret provides, and is replaced by a temporary file holding a
/// stand-in of the right shape.
fn container_env(
    pod: &Value,
    c: &Value,
    secrets: &Path,
    where_: &str,
) -> Result<Vec<(String, String)>, Vec<String>> {
    let mut vars = Vec::new();
    let mut problems = Vec::new();
    for e in c["env"].as_array().into_iter().flatten() {
        let name = str_of(&e["name"]).to_owned();
        if !name.starts_with("CORRAL_") {
            continue;
        }
        let Some(value) = e["value"].as_str() else {
            problems.push(format!("{where_}: {name} has no literal value"));
            continue;
        };
        if !name.ends_with("_FILE") {
            vars.push((name, value.to_owned()));
            continue;
        }
        match secret_file(pod, c, value) {
            Err(why) => problems.push(format!("{where_}: {name}={value}: {why}")),
            Ok(key) => {
                let stand_in = if key == "database-url" {
                    "postgres://corral@postgres.postgres.svc:5432/corral\n".to_owned()
                } else {
                    format!("{}\n", "s".repeat(48))
                };
                let file = secrets.join(format!("{}-{}", str_of(&c["name"]), key));
                std::fs::write(&file, stand_in).unwrap();
                vars.push((name, file.display().to_string()));
            }
        }
    }
    if problems.is_empty() {
        Ok(vars)
    } else {
        Err(problems)
    }
}

/// The key of the Secret that the pod mounts at `path`.
fn secret_file(pod: &Value, c: &Value, path: &str) -> Result<String, String> {
    let path = Path::new(path);
    for m in c["volumeMounts"].as_array().into_iter().flatten() {
        let Ok(rest) = path.strip_prefix(str_of(&m["mountPath"])) else {
            continue;
        };
        let volume = pod["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|v| v["name"] == m["name"])
            .ok_or("its volume is not in the pod")?;
        if volume["secret"].is_null() {
            return Err(format!("mounted from volume {}, not a Secret", m["name"]));
        }
        let rest = rest.display().to_string();
        return match volume["secret"]["items"].as_array() {
            Some(items) => items
                .iter()
                .find(|i| i["path"] == rest.as_str())
                .map(|i| str_of(&i["key"]).to_owned())
                .ok_or_else(|| format!("the Secret volume {} has no item at {rest}", m["name"])),
            None => Ok(rest),
        };
    }
    Err("no volume is mounted there".into())
}

fn port_named(c: &Value, name: &str) -> Option<u16> {
    c["ports"].as_array()?.iter().find(|p| p["name"] == name)?["containerPort"]
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
}

fn env_of<'a>(c: &'a Value, name: &str) -> Option<&'a str> {
    c["env"].as_array()?.iter().find(|e| e["name"] == name)?["value"].as_str()
}

/// The settings, loaded, against the rest of the render.
fn check(objs: &[Value]) -> Result<BTreeMap<String, Role>, Vec<String>> {
    let loaded = load_all(objs)?;
    let mut problems = Vec::new();
    let mut fail = |m: String| problems.push(m);
    let ollama = find(objs, "Deployment", "ollama");
    let ollama_c = ollama.map(|o| &pod_spec(o)["containers"][0]);
    for l in &loaded {
        let s = &l.settings;
        let w = &l.workload;
        match l.role {
            Role::Portal => {
                if port_named(&l.container, "http") != Some(s.server.port) {
                    fail(format!(
                        "{w}: port http is not server.port {}",
                        s.server.port
                    ));
                }
                if !s.server.host.is_unspecified() {
                    fail(format!(
                        "{w}: server.host {} is not reachable from the Service",
                        s.server.host
                    ));
                }
                if s.gateway.enabled {
                    fail(format!(
                        "{w}: gateway.enabled: the gateway is its own Deployment"
                    ));
                }
                if s.database.migrate {
                    fail(format!(
                        "{w}: database.migrate must be false: the Job corral-migrate migrates"
                    ));
                }
                if s.cluster.driver != ClusterDriver::Kubernetes {
                    fail(format!("{w}: cluster.driver must be kubernetes"));
                }
                if find(objs, "Deployment", &s.cluster.workload).is_none() {
                    fail(format!(
                        "{w}: cluster.workload {} is not a Deployment here",
                        s.cluster.workload
                    ));
                }
                if let Some(c) = ollama_c
                    && port_named(c, "http") != Some(s.cluster.ollama_port)
                {
                    fail(format!("{w}: cluster.ollama_port is not Ollama's port"));
                }
                let shared = ollama.is_some_and(|o| {
                    pod_spec(o)["volumes"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|v| v["name"] == "models" && !v["persistentVolumeClaim"].is_null())
                });
                let want = if shared {
                    ModelsVolume::Shared
                } else {
                    ModelsVolume::PerPod
                };
                if s.cluster.models_volume != want {
                    fail(format!(
                        "{w}: cluster.models_volume is {:?}, the Ollama models volume is {want:?}",
                        s.cluster.models_volume
                    ));
                }
                for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
                    let path = str_of(&l.container[probe]["httpGet"]["path"]);
                    if !matches!(path, "/healthz" | "/readyz") {
                        fail(format!("{w}: {probe} on {path}, not /healthz or /readyz"));
                    }
                }
            }
            Role::Gateway => {
                if port_named(&l.container, "http") != Some(s.gateway.port) {
                    fail(format!(
                        "{w}: port http is not gateway.port {}",
                        s.gateway.port
                    ));
                }
                if !s.gateway.host.is_unspecified() {
                    fail(format!(
                        "{w}: gateway.host {} is not reachable from the Service",
                        s.gateway.host
                    ));
                }
                let spool = s.gateway.spool_dir.display().to_string();
                let mounted = l.container["volumeMounts"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|m| m["mountPath"] == spool.as_str() && m["readOnly"] != true);
                if !mounted {
                    fail(format!(
                        "{w}: gateway.spool_dir {spool} is not a writable volume of its own"
                    ));
                }
                // preStop sleep, then the streams' grace, then up to 9 s to
                // write or spool usage (corral-gateway's main).
                let pre_stop: u64 = l.container["lifecycle"]["preStop"]["exec"]["command"]
                    .as_array()
                    .and_then(|c| c.get(1))
                    .and_then(|s| s.as_str()?.parse().ok())
                    .unwrap_or(0);
                let grace = l.pod["terminationGracePeriodSeconds"]
                    .as_u64()
                    .unwrap_or(30);
                let needed = pre_stop + s.gateway.shutdown_grace_secs + 9;
                if grace <= needed {
                    fail(format!(
                        "{w}: terminationGracePeriodSeconds {grace} must exceed preStop {pre_stop} s + gateway.shutdown_grace_secs {} s + 9 s of usage flush",
                        s.gateway.shutdown_grace_secs
                    ));
                }
                if let Some(c) = ollama_c {
                    let parallel = env_of(c, "OLLAMA_NUM_PARALLEL").and_then(|p| p.parse().ok());
                    if parallel != Some(s.gateway.upstream_parallel) {
                        fail(format!(
                            "{w}: gateway.upstream_parallel {} is not Ollama's OLLAMA_NUM_PARALLEL {parallel:?}",
                            s.gateway.upstream_parallel
                        ));
                    }
                }
                for u in s.upstreams().unwrap() {
                    let host = u.host_str().unwrap_or("");
                    let svc = find(objs, "Service", host);
                    let port_ok = svc.is_some_and(|svc| {
                        svc["spec"]["ports"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .any(|p| p["port"].as_u64() == u.port_or_known_default().map(u64::from))
                    });
                    if !port_ok {
                        fail(format!("{w}: upstream {u} is not a Service port here"));
                    }
                }
                if s.keys.pepper.is_none() {
                    fail(format!(
                        "{w}: keys.pepper must be set: portal and gateways share it"
                    ));
                }
            }
            Role::Migrate => {
                if s.database.url.is_none() {
                    fail(format!("{w}: database.url must be set"));
                }
            }
        }
    }
    // One pepper for portal and gateways: the same Secret key.
    let peppers: std::collections::BTreeSet<_> = loaded
        .iter()
        .filter(|l| l.role != Role::Migrate)
        .map(|l| {
            let path = env_of(&l.container, "CORRAL_KEYS__PEPPER_FILE").unwrap_or("");
            let pod = &l.pod;
            let secret = pod["volumes"]
                .as_array()
                .into_iter()
                .flatten()
                .find_map(|v| v["secret"]["secretName"].as_str());
            (
                secret.map(str::to_owned),
                secret_file(pod, &l.container, path).ok(),
            )
        })
        .collect();
    if peppers.len() != 1 {
        problems.push(format!(
            "portal and gateways read keys.pepper from different places: {peppers:?}"
        ));
    }
    for role in [Role::Portal, Role::Gateway, Role::Migrate] {
        if !loaded.iter().any(|l| l.role == role) {
            problems.push(format!("no {role:?} container in the render"));
        }
    }
    if problems.is_empty() {
        Ok(loaded
            .into_iter()
            .map(|l| (format!("{} ({:?})", l.workload, l.settings.profile), l.role))
            .collect())
    } else {
        Err(problems)
    }
}

fn assert_accepted(name: &str, objs: &[Value]) {
    match check(objs) {
        Ok(found) => eprintln!("{name}: {found:?}"),
        Err(problems) => panic!("{name}:\n  {}", problems.join("\n  ")),
    }
}

fn assert_refused(objs: &[Value], expect: &str) {
    match check(objs) {
        Ok(_) => panic!("accepted, though it should fail with {expect:?}"),
        Err(problems) => assert!(
            problems.iter().any(|p| p.contains(expect)),
            "expected a problem naming {expect:?}, got:\n  {}",
            problems.join("\n  ")
        ),
    }
}

fn env_mut<'a>(objs: &'a mut [Value], deployment: &str) -> &'a mut Vec<Value> {
    objs.iter_mut()
        .find(|o| o["metadata"]["name"] == deployment && o["kind"] == "Deployment")
        .unwrap()["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array_mut()
        .unwrap()
}

#[test]
fn local_overlay_env_is_accepted_by_the_settings_parser() {
    assert_accepted("k8s/overlays/local", &overlay("local"));
}

#[test]
fn production_overlay_env_is_accepted_by_the_settings_parser() {
    assert_accepted("k8s/overlays/production", &overlay("production"));
}

#[test]
fn production_with_shared_models_env_is_accepted_by_the_settings_parser() {
    assert_accepted(
        "production + components/shared-models",
        &production_shared_models(),
    );
}

#[test]
fn a_misspelt_setting_in_the_manifests_is_refused() {
    let mut objs = overlay("production");
    let env = env_mut(&mut objs, "corral-gateway");
    let e = env
        .iter_mut()
        .find(|e| e["name"] == "CORRAL_GATEWAY__UPSTREAM_PARALLEL")
        .unwrap();
    e["name"] = "CORRAL_GATEWAY__UPSTREAM_PARALEL".into();
    assert_refused(&objs, "unknown setting gateway.upstream_paralel");
}

#[test]
fn a_missing_required_setting_is_refused() {
    let mut objs = overlay("production");
    env_mut(&mut objs, "corral").retain(|e| e["name"] != "CORRAL_SESSION__SECRET_FILE");
    assert_refused(&objs, "session.secret");
}

#[test]
fn a_secret_file_no_secret_provides_is_refused() {
    let mut objs = overlay("production");
    let env = env_mut(&mut objs, "corral-gateway");
    let e = env
        .iter_mut()
        .find(|e| e["name"] == "CORRAL_KEYS__PEPPER_FILE")
        .unwrap();
    e["value"] = "/etc/corral/pepper".into();
    assert_refused(
        &objs,
        "CORRAL_KEYS__PEPPER_FILE=/etc/corral/pepper: no volume is mounted there",
    );
}

#[test]
fn a_termination_grace_shorter_than_the_gateway_shutdown_is_refused() {
    let mut objs = overlay("production");
    let env = env_mut(&mut objs, "corral-gateway");
    let e = env
        .iter_mut()
        .find(|e| e["name"] == "CORRAL_GATEWAY__SHUTDOWN_GRACE_SECS")
        .unwrap();
    e["value"] = "40".into();
    assert_refused(&objs, "terminationGracePeriodSeconds");
}
