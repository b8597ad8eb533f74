//! Capacity advice: the cluster report works out, from what the pods hold,
//! how many models and parallel requests one pod's GPU takes; and a pull
//! whose tag says it cannot fit is refused until asked with `force`.

mod common;

use app::domain::ClusterView;
use app::domain::operations::{self, Workload, Workloads};
use app::model::NewOperation;
use common::ops::*;
use sqlx::PgPool;

const GIB: i64 = 1024 * 1024 * 1024;

fn workload(gpu_gib: i64) -> Workload {
    Workload {
        name: "ollama".into(),
        min_replicas: 1,
        max_replicas: 4,
        shared_models: false,
        can_scale: false,
        gpu_memory: Some(gpu_gib * GIB),
    }
}

fn pull(model: &str, force: bool) -> NewOperation {
    NewOperation::Pull {
        model: model.into(),
        workload: None,
        team: None,
        in_next_window: false,
        force,
    }
}

#[sqlx::test(migrator = "app::MIGRATOR")]
async fn a_pull_that_cannot_fit_is_refused_until_forced(db: PgPool) {
    let admin = actor(&db, user(&db, "root", true).await).await;
    let workloads = Workloads(vec![workload(24)]);
    let mut tx = db.begin().await.unwrap();
    match operations::start(&mut tx, &admin, &workloads, &pull("llama3.3:70b", false)).await {
        Err(app::domain::Error::Validation { field, message }) => {
            assert_eq!(field, "model");
            assert!(
                message.contains("70 B parameters")
                    && message.contains("24.0 GiB")
                    && message.contains("force"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    drop(tx);
    let mut tx = db.begin().await.unwrap();
    operations::start(&mut tx, &admin, &workloads, &pull("llama3.3:70b", true))
        .await
        .expect("forced");
    operations::start(&mut tx, &admin, &workloads, &pull("llama3.1:8b", false))
        .await
        .expect("an 8b model fits in 24 GiB");
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn the_cluster_report_advises_from_what_the_pods_hold() {
    let (_sims, urls) = pods(5).await;
    let cluster = server::cluster::Cluster::new(
        cluster::Driver::Static(cluster::StaticDriver::new("ollama", urls)),
        workload(8),
    );
    let report = cluster.report().await;
    let c = &report.workloads[0].capacity;
    assert_eq!(c.gpu_memory, Some(8 * GIB));
    assert_eq!(c.parallel, 4);
    // The simulator's three small models fit together many times over.
    assert_eq!(c.models.len(), 3, "{:?}", c.models);
    assert_eq!(c.max_loaded_models, Some(3));
    assert!(c.num_parallel.is_some_and(|p| p >= 1));
    assert!(
        c.steps
            .iter()
            .any(|s| s.starts_with("OLLAMA_MAX_LOADED_MODELS")),
        "{:?}",
        c.steps
    );
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);

    // Without the GPU's size: the footprints, and no figures.
    let mut w = workload(8);
    w.gpu_memory = None;
    let (_sims, urls) = pods(5).await;
    let cluster = server::cluster::Cluster::new(
        cluster::Driver::Static(cluster::StaticDriver::new("ollama", urls)),
        w,
    );
    let c = cluster.report().await.workloads.remove(0).capacity;
    assert_eq!(c.max_loaded_models, None);
    assert_eq!(c.models.len(), 3);
}
