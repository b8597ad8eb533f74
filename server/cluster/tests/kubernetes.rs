//! The `kubernetes` driver against a real kube-apiserver and controller
//! manager (v1.20, scripts/k8s/start), running as the service account of
//! the shipped Role: what it sees, how it scales (with and without an HPA),
//! and that a call outside the Role is refused.

mod common;

use cluster::{ClusterError, Driver, KubernetesDriver, KubernetesOptions, Scaled};
use common::TestCluster;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use serde_json::json;

async fn driver(t: &TestCluster, workload: &str) -> Driver {
    let kubeconfig = t.service_account_kubeconfig().await;
    Driver::Kubernetes(
        KubernetesDriver::connect(KubernetesOptions {
            kubeconfig: Some(kubeconfig),
            namespace: None,
            workload: workload.into(),
            autoscaler: None,
            ollama_port: 11434,
        })
        .await
        .expect("the driver reads the service account's kubeconfig"),
    )
}

#[tokio::test]
async fn the_driver_sees_the_deployments_pods_and_why_one_is_pending() {
    let t = TestCluster::new("see").await;
    t.deployment("ollama", 2).await;
    let pods = t.pods("ollama", 2).await;
    t.run_pod(&pods[0], "gpu-node-1", "127.0.0.2").await;
    t.unschedulable(&pods[1]).await;
    // A pod that matches the selector but is no ReplicaSet's of the
    // Deployment is not one of its pods.
    t.create(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": "stray", "labels": { "app": "ollama" } },
        "spec": { "containers": [{ "name": "x", "image": "busybox" }] }
    }))
    .await;
    let d = driver(&t, "ollama").await;

    let state = d
        .state("ollama")
        .await
        .expect("state as the service account");
    assert_eq!(state.driver, "kubernetes");
    assert_eq!(
        state.location,
        format!("deployment ollama in namespace {}", t.namespace)
    );
    assert_eq!(state.desired, Some(2));
    assert!(state.can_scale);
    assert_eq!(state.pods.len(), 2, "{:?}", state.pods);
    let running = state.pods.iter().find(|p| p.name == pods[0]).unwrap();
    assert!(running.ready);
    assert_eq!(running.phase, "Running");
    assert_eq!(running.node.as_deref(), Some("gpu-node-1"));
    assert_eq!(running.gpus.as_deref(), Some("1"));
    assert_eq!(running.restarts, 1);
    assert_eq!(
        running.endpoint.as_ref().map(|u| u.as_str()),
        Some("http://127.0.0.2:11434/")
    );
    let pending = state.pods.iter().find(|p| p.name == pods[1]).unwrap();
    assert!(!pending.ready);
    assert_eq!(pending.phase, "Pending");
    let why = pending.reason.as_deref().unwrap_or_default();
    assert!(
        why.contains("Insufficient nvidia.com/gpu") && why.contains("cluster autoscaler"),
        "{why}"
    );
    // Operations run on the ready pod only.
    let ready = d.ready_pods("ollama").await.unwrap();
    assert_eq!(ready.len(), 1);
    assert_eq!(ready[0].0, pods[0]);

    // The Deployment's status follows the pods (the controller manager's
    // ReplicaSet and Deployment controllers).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let s = d.state("ollama").await.unwrap();
        if s.ready == Some(1) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "ready stayed {:?}",
            s.ready
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn scaling_sets_spec_replicas_through_the_scale_subresource() {
    let t = TestCluster::new("scale").await;
    t.deployment("ollama", 1).await;
    let d = driver(&t, "ollama").await;

    let scaled = d
        .scale("ollama", 3)
        .await
        .expect("scale as the service account");
    assert_eq!(scaled, Scaled::Replicas { from: 1, to: 3 });
    let deployment = Api::<Deployment>::namespaced(t.admin.clone(), &t.namespace)
        .get("ollama")
        .await
        .unwrap();
    assert_eq!(deployment.spec.replicas, Some(3));
    // The controller manager acts on it: three pods.
    t.pods("ollama", 3).await;

    let scaled = d.scale("ollama", 0).await.unwrap();
    assert_eq!(scaled, Scaled::Replicas { from: 3, to: 0 });
}

#[tokio::test]
async fn with_an_hpa_its_bounds_move_instead_of_the_replicas() {
    let t = TestCluster::new("hpa").await;
    t.deployment("ollama", 2).await;
    t.hpa("ollama", "ollama", 1, 4).await;
    let d = driver(&t, "ollama").await;

    let state = d.state("ollama").await.unwrap();
    let a = state
        .autoscaler
        .expect("the HPA is found through discovery");
    assert_eq!((a.min_replicas, a.max_replicas), (1, 4));
    assert_eq!(a.metric.as_deref(), Some("ollama_queue_depth"));
    assert_eq!(a.target_value, Some(2.0));

    let ar = t.hpa_resource().await;
    let hpas: Api<DynamicObject> = Api::namespaced_with(t.admin.clone(), &t.namespace, &ar);
    let bounds = |o: DynamicObject| {
        (
            o.data["spec"]["minReplicas"].as_i64(),
            o.data["spec"]["maxReplicas"].as_i64(),
        )
    };

    // Up to 6: the minimum rises to it, and the maximum with it.
    let scaled = d.scale("ollama", 6).await.expect("patch the HPA");
    assert_eq!(
        scaled,
        Scaled::AutoscalerBounds {
            name: "ollama".into(),
            min: 6,
            max: 6
        }
    );
    assert!(scaled.describe().contains("owns the replicas"));
    assert_eq!(
        bounds(hpas.get("ollama").await.unwrap()),
        (Some(6), Some(6))
    );
    // Corral did not touch the Deployment itself.
    let deployment = Api::<Deployment>::namespaced(t.admin.clone(), &t.namespace)
        .get("ollama")
        .await
        .unwrap();
    assert_ne!(deployment.spec.replicas, Some(6));

    // An HPA cannot hold 0 replicas: refused with the reason.
    match d.scale("ollama", 0).await {
        Err(ClusterError::Conflict(m)) => assert!(m.contains("cannot scale to 0"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn calls_outside_the_shipped_role_are_refused() {
    let t = TestCluster::new("rbac").await;
    t.deployment("ollama", 1).await;
    let kubeconfig = t.service_account_kubeconfig().await;
    let kc = kube::config::Kubeconfig::read_from(&kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    let sa = kube::Client::try_from(config).unwrap();

    // Within the Role: reading pods works.
    Api::<Pod>::namespaced(sa.clone(), &t.namespace)
        .list(&ListParams::default())
        .await
        .expect("the Role allows listing pods");
    // Outside it: no Secrets, no listing Deployments, no patching a whole
    // Deployment (only its scale), nothing in another namespace.
    let refused = |r: Result<(), kube::Error>, what: &str| match r {
        Err(kube::Error::Api(s)) if s.code == 403 => {}
        other => panic!("{what} should be refused with 403, got {other:?}"),
    };
    refused(
        Api::<Secret>::namespaced(sa.clone(), &t.namespace)
            .list(&ListParams::default())
            .await
            .map(|_| ()),
        "list secrets",
    );
    refused(
        Api::<Deployment>::namespaced(sa.clone(), &t.namespace)
            .list(&ListParams::default())
            .await
            .map(|_| ()),
        "list deployments",
    );
    refused(
        Api::<Deployment>::namespaced(sa.clone(), &t.namespace)
            .patch(
                "ollama",
                &PatchParams::default(),
                &Patch::Merge(json!({ "spec": { "template": { "spec": { "containers": [{ "name": "ollama", "image": "evil" }] } } } })),
            )
            .await
            .map(|_| ()),
        "patch the Deployment",
    );
    refused(
        Api::<Pod>::namespaced(sa.clone(), "kube-system")
            .list(&ListParams::default())
            .await
            .map(|_| ()),
        "list pods in another namespace",
    );

    // The driver pointed where its Role does not reach says which call
    // was refused and which Role must allow it.
    let d = Driver::Kubernetes(
        KubernetesDriver::connect(KubernetesOptions {
            kubeconfig: Some(kubeconfig),
            namespace: Some("kube-system".into()),
            workload: "ollama".into(),
            autoscaler: None,
            ollama_port: 11434,
        })
        .await
        .unwrap(),
    );
    match d.state("ollama").await {
        Err(ClusterError::Forbidden(m)) => {
            assert!(
                m.contains("get deployment ollama in namespace kube-system"),
                "{m}"
            );
            assert!(m.contains("k8s/base/portal/rbac.yaml"), "{m}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_missing_deployment_is_named_in_the_error() {
    let t = TestCluster::new("missing").await;
    let d = driver(&t, "ollama").await;
    match d.state("ollama").await {
        Err(ClusterError::NotFound(m)) => assert!(m.contains("ollama"), "{m}"),
        other => panic!("{other:?}"),
    }
    match d.state("other").await {
        Err(ClusterError::NotFound(m)) => {
            assert!(m.contains("Corral manages deployment ollama"), "{m}")
        }
        other => panic!("{other:?}"),
    }
}
