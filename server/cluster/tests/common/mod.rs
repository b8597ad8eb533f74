//! A real kube-apiserver for the driver's tests (scripts/k8s/start; its
//! admin kubeconfig in `TEST_KUBECONFIG`), a fresh namespace per test with
//! the shipped Role, a service account's kubeconfig, and the kubelet played
//! by patching pod status.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, ServiceAccount};
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::{Value, json};

pub struct TestCluster {
    pub admin: Client,
    pub namespace: String,
    kubeconfig: PathBuf,
    pub dir: PathBuf,
}

fn admin_kubeconfig() -> PathBuf {
    let path = std::env::var_os("TEST_KUBECONFIG").unwrap_or_else(|| {
        panic!(
            "TEST_KUBECONFIG is not set: these tests need the test Kubernetes API server. \
             Run scripts/k8s/build once, then scripts/k8s/start, and set \
             TEST_KUBECONFIG=<the folder it printed>/kubeconfig (scripts/test does all this)"
        )
    });
    PathBuf::from(path)
}

async fn client_for(path: &PathBuf) -> Client {
    let kc = Kubeconfig::read_from(path).expect("a readable kubeconfig");
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("a usable kubeconfig");
    Client::try_from(config).expect("a Kubernetes client")
}

impl TestCluster {
    /// A fresh namespace `prefix-<random>` with the shipped ServiceAccount,
    /// Role and RoleBinding (k8s/base/portal/rbac.yaml) applied as they are.
    pub async fn new(prefix: &str) -> Self {
        let kubeconfig = admin_kubeconfig();
        let admin = client_for(&kubeconfig).await;
        let namespace = format!("{prefix}-{:08x}", rand_u32());
        let ns: Namespace =
            serde_json::from_value(json!({ "metadata": { "name": namespace } })).unwrap();
        Api::<Namespace>::all(admin.clone())
            .create(&PostParams::default(), &ns)
            .await
            .expect("the test apiserver creates a namespace");
        let dir = std::env::temp_dir().join(format!("corral-k8s-test-{namespace}"));
        std::fs::create_dir_all(&dir).unwrap();
        let me = Self {
            admin,
            namespace,
            kubeconfig,
            dir,
        };
        me.apply_file("k8s/base/portal/rbac.yaml").await;
        me
    }

    /// Creates every object of a YAML file of the repository in the
    /// namespace.
    pub async fn apply_file(&self, relative: &str) {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(relative);
        let text = std::fs::read_to_string(&path).unwrap();
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
        for doc in docs.into_iter().filter(|d| !d.is_null()) {
            self.create(doc).await;
        }
    }

    /// Creates one object (any kind) in the namespace.
    pub async fn create(&self, doc: Value) -> DynamicObject {
        let (group, version) = match doc["apiVersion"].as_str().unwrap().split_once('/') {
            Some((g, v)) => (g.to_owned(), v.to_owned()),
            None => (
                String::new(),
                doc["apiVersion"].as_str().unwrap().to_owned(),
            ),
        };
        let gvk = GroupVersionKind::gvk(&group, &version, doc["kind"].as_str().unwrap());
        let (ar, _) = kube::discovery::pinned_kind(&self.admin, &gvk)
            .await
            .expect("the kind is served");
        let obj: DynamicObject = serde_json::from_value(doc).unwrap();
        Api::<DynamicObject>::namespaced_with(self.admin.clone(), &self.namespace, &ar)
            .create(&PostParams::default(), &obj)
            .await
            .unwrap_or_else(|e| panic!("create {gvk:?}: {e}"))
    }

    /// A kubeconfig that authenticates as the service account `corral` of
    /// the namespace (a bound token from the TokenRequest API).
    pub async fn service_account_kubeconfig(&self) -> PathBuf {
        let sas: Api<ServiceAccount> = Api::namespaced(self.admin.clone(), &self.namespace);
        let request = json!({
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": { "audiences": ["https://kubernetes.default.svc"], "expirationSeconds": 3600 }
        });
        let answer: Value = sas
            .create_subresource("token", "corral", &PostParams::default(), &request)
            .await
            .expect("a token for the service account");
        let token = answer["status"]["token"].as_str().unwrap();
        let admin: Value =
            serde_saphyr::from_str(&std::fs::read_to_string(&self.kubeconfig).unwrap()).unwrap();
        let cluster = &admin["clusters"][0]["cluster"];
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters: [{{name: test, cluster: {{server: {:?}, certificate-authority: {:?}}}}}]\nusers: [{{name: corral, user: {{token: {token:?}}}}}]\ncontexts: [{{name: test, context: {{cluster: test, user: corral, namespace: {:?}}}}}]\ncurrent-context: test\n",
            cluster["server"].as_str().unwrap(),
            cluster["certificate-authority"].as_str().unwrap(),
            self.namespace,
        );
        let path = self.dir.join("corral.kubeconfig");
        std::fs::write(&path, text).unwrap();
        path
    }

    /// A Deployment `name` of Ollama with `replicas`, asking for a GPU.
    pub async fn deployment(&self, name: &str, replicas: i32) {
        let d: Deployment = serde_json::from_value(json!({
            "metadata": { "name": name, "labels": { "app": name } },
            "spec": {
                "replicas": replicas,
                "selector": { "matchLabels": { "app": name } },
                "template": {
                    "metadata": { "labels": { "app": name } },
                    "spec": { "containers": [{
                        "name": "ollama", "image": "ollama/ollama:0.13.0",
                        "ports": [{ "name": "http", "containerPort": 11434 }],
                        "resources": { "limits": { "nvidia.com/gpu": "1" } }
                    }] }
                }
            }
        }))
        .unwrap();
        Api::<Deployment>::namespaced(self.admin.clone(), &self.namespace)
            .create(&PostParams::default(), &d)
            .await
            .expect("create the Deployment");
    }

    /// The Deployment's pods once the controller manager has made `n`.
    pub async fn pods(&self, app: &str, n: usize) -> Vec<String> {
        let api: Api<Pod> = Api::namespaced(self.admin.clone(), &self.namespace);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let list = api
                .list(&ListParams::default().labels(&format!("app={app}")))
                .await
                .unwrap();
            let mut names: Vec<String> = list
                .items
                .iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .filter_map(|p| p.metadata.name.clone())
                .collect();
            if names.len() == n {
                names.sort();
                return names;
            }
            assert!(
                Instant::now() < deadline,
                "the controller manager made {} pods of {app}, not {n}",
                names.len()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Plays the kubelet: the pod runs on `node`, ready, at `ip`. The Node
    /// object is made first: the controller manager's pod garbage collector
    /// deletes pods bound to a node that does not exist.
    pub async fn run_pod(&self, pod: &str, node: &str, ip: &str) {
        let n: Node = serde_json::from_value(json!({ "metadata": { "name": node } })).unwrap();
        match Api::<Node>::all(self.admin.clone())
            .create(&PostParams::default(), &n)
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.is_already_exists() => {}
            Err(e) => panic!("create node {node}: {e}"),
        }
        let api: Api<Pod> = Api::namespaced(self.admin.clone(), &self.namespace);
        let binding = json!({
            "apiVersion": "v1", "kind": "Binding",
            "metadata": { "name": pod },
            "target": { "apiVersion": "v1", "kind": "Node", "name": node }
        });
        let _: Value = api
            .create_subresource("binding", pod, &PostParams::default(), &binding)
            .await
            .expect("bind the pod to a node");
        self.pod_status(
            pod,
            json!({
                "phase": "Running", "podIP": ip, "hostIP": "127.0.0.1",
                "conditions": [
                    { "type": "PodScheduled", "status": "True" },
                    { "type": "Ready", "status": "True" },
                    { "type": "ContainersReady", "status": "True" },
                    { "type": "Initialized", "status": "True" }
                ],
                "containerStatuses": [{
                    "name": "ollama", "ready": true, "restartCount": 1,
                    "image": "ollama/ollama:0.13.0", "imageID": "",
                    "state": { "running": { "startedAt": "2026-12-07T00:00:00Z" } }
                }]
            }),
        )
        .await;
    }

    /// Plays the scheduler that finds no GPU free for the pod.
    pub async fn unschedulable(&self, pod: &str) {
        self.pod_status(
            pod,
            json!({
                "phase": "Pending",
                "conditions": [{
                    "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                    "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."
                }]
            }),
        )
        .await;
    }

    async fn pod_status(&self, pod: &str, status: Value) {
        let api: Api<Pod> = Api::namespaced(self.admin.clone(), &self.namespace);
        api.patch_status(
            pod,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": status })),
        )
        .await
        .expect("patch the pod's status");
    }

    /// The HPA API the test apiserver serves (autoscaling/v2beta2 on 1.20).
    pub async fn hpa_resource(&self) -> ApiResource {
        let group = kube::discovery::group(&self.admin, "autoscaling")
            .await
            .unwrap();
        ["v2", "v2beta2"]
            .iter()
            .find_map(|v| {
                group
                    .versioned_resources(v)
                    .into_iter()
                    .find(|(ar, _)| ar.kind == "HorizontalPodAutoscaler")
            })
            .expect("an HPA API")
            .0
    }

    /// An HPA on `ollama_queue_depth` owning Deployment `target`.
    pub async fn hpa(&self, name: &str, target: &str, min: i32, max: i32) {
        let ar = self.hpa_resource().await;
        self.create(json!({
            "apiVersion": ar.api_version, "kind": "HorizontalPodAutoscaler",
            "metadata": { "name": name },
            "spec": {
                "scaleTargetRef": { "apiVersion": "apps/v1", "kind": "Deployment", "name": target },
                "minReplicas": min, "maxReplicas": max,
                "metrics": [{ "type": "Pods", "pods": {
                    "metric": { "name": "ollama_queue_depth" },
                    "target": { "type": "AverageValue", "averageValue": "2" }
                } }]
            }
        }))
        .await;
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    h.finish() as u32
}
