//! A Deployment's HorizontalPodAutoscaler, read and changed as a dynamic
//! object through discovery: clusters from 1.23 serve `autoscaling/v2`,
//! older ones (the v1.20 test apiserver) `autoscaling/v2beta2`, and the
//! fields used here are the same in both.

use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};

use super::kubernetes::api_error;
use super::{Autoscaler, ClusterError, Scaled};

/// The versions tried, newest first.
const VERSIONS: [&str; 2] = ["v2", "v2beta2"];

/// An HPA that owns the workload's replicas.
pub(crate) struct Hpa {
    pub resource: ApiResource,
    pub report: Autoscaler,
}

/// The HPA `name`, if it exists and targets Deployment `deployment`.
pub(crate) async fn get(
    client: &Client,
    namespace: &str,
    name: &str,
    deployment: &str,
) -> Result<Option<Hpa>, ClusterError> {
    let Some(resource) = resource(client).await? else {
        return Ok(None);
    };
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
    let Some(obj) = api.get_opt(name).await.map_err(|e| {
        api_error(
            e,
            &format!("get horizontalpodautoscaler {name} in namespace {namespace}"),
        )
    })?
    else {
        return Ok(None);
    };
    let target = &obj.data["spec"]["scaleTargetRef"];
    if target["kind"] != "Deployment" || target["name"] != deployment {
        return Ok(None);
    }
    Ok(Some(Hpa {
        report: report(name, &obj.data),
        resource,
    }))
}

/// Where HPAs are served, found through discovery (allowed to every
/// authenticated user by `system:discovery`).
async fn resource(client: &Client) -> Result<Option<ApiResource>, ClusterError> {
    let group = kube::discovery::group(client, "autoscaling")
        .await
        .map_err(|e| api_error(e, "discover the autoscaling API group"))?;
    for v in VERSIONS {
        if let Some((ar, _)) = group
            .versioned_resources(v)
            .into_iter()
            .find(|(ar, _)| ar.kind == "HorizontalPodAutoscaler")
        {
            return Ok(Some(ar));
        }
    }
    Ok(None)
}

/// What the cluster page shows of an HPA (v2 and v2beta2 alike).
fn report(name: &str, data: &Value) -> Autoscaler {
    let spec = &data["spec"];
    let status = &data["status"];
    let int = |v: &Value| v.as_i64().and_then(|n| i32::try_from(n).ok());
    let metric = spec["metrics"].get(0);
    let (metric_name, target_value) = match metric {
        Some(m) => metric_and_value(m, "target"),
        None => (None, None),
    };
    let current_value = status["currentMetrics"]
        .as_array()
        .and_then(|all| {
            all.iter()
                .find(|m| metric_and_value(m, "current").0 == metric_name)
        })
        .and_then(|m| metric_and_value(m, "current").1);
    Autoscaler {
        name: name.to_owned(),
        min_replicas: int(&spec["minReplicas"]).unwrap_or(1),
        max_replicas: int(&spec["maxReplicas"]).unwrap_or(0),
        current_replicas: int(&status["currentReplicas"]),
        desired_replicas: int(&status["desiredReplicas"]),
        metric: metric_name,
        current_value,
        target_value,
    }
}

/// A metric's name (`ollama_queue_depth`, `cpu`…) and its target or current
/// value (`part` is `target` or `current`).
fn metric_and_value(m: &Value, part: &str) -> (Option<String>, Option<f64>) {
    let kind = match m["type"].as_str() {
        Some("Pods") => "pods",
        Some("Object") => "object",
        Some("External") => "external",
        Some("Resource") => "resource",
        Some("ContainerResource") => "containerResource",
        _ => return (None, None),
    };
    let body = &m[kind];
    let name = body["metric"]["name"]
        .as_str()
        .or_else(|| body["name"].as_str())
        .map(str::to_owned);
    let v = &body[part];
    let value = ["averageValue", "value"]
        .iter()
        .find_map(|k| v[*k].as_str().and_then(quantity))
        .or_else(|| v["averageUtilization"].as_f64());
    (name, value)
}

/// A Kubernetes quantity (`5`, `500m`, `1.5k`, `2Gi`) as a number.
pub fn quantity(s: &str) -> Option<f64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(split);
    let n: f64 = number.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        _ => {
            // Decimal exponent: 1e3, 2E-2.
            let exp: i32 = suffix.strip_prefix(['e', 'E'])?.parse().ok()?;
            10f64.powi(exp)
        }
    };
    Some(n * factor)
}

/// Moves the HPA's bounds so that it keeps `replicas`: up raises the
/// minimum to it (and the maximum if needed), down lowers the maximum to it
/// (and the minimum if needed).
pub(crate) async fn set_bounds(
    client: &Client,
    namespace: &str,
    hpa: &Hpa,
    replicas: i32,
) -> Result<Scaled, ClusterError> {
    let a = &hpa.report;
    if replicas < 1 {
        return Err(ClusterError::Conflict(format!(
            "HorizontalPodAutoscaler {} owns the replicas and cannot scale to 0; delete it first, or scale to 1 or more",
            a.name
        )));
    }
    let current = a.current_replicas.unwrap_or(a.min_replicas);
    let (min, max) = if replicas >= current {
        (replicas, a.max_replicas.max(replicas))
    } else {
        (a.min_replicas.min(replicas), replicas)
    };
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &hpa.resource);
    api.patch(
        &a.name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "spec": { "minReplicas": min, "maxReplicas": max } })),
    )
    .await
    .map_err(|e| {
        api_error(
            e,
            &format!(
                "patch horizontalpodautoscaler {} in namespace {namespace}",
                a.name
            ),
        )
    })?;
    Ok(Scaled::AutoscalerBounds {
        name: a.name.clone(),
        min,
        max,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_read_as_kubernetes_writes_them() {
        assert_eq!(quantity("5"), Some(5.0));
        assert_eq!(quantity("500m"), Some(0.5));
        assert_eq!(quantity("1.5k"), Some(1500.0));
        assert_eq!(quantity("2Gi"), Some(2.0 * 1024.0 * 1024.0 * 1024.0));
        assert_eq!(quantity("1e3"), Some(1000.0));
        assert_eq!(quantity("abc"), None);
        assert_eq!(quantity("5X"), None);
    }

    #[test]
    fn a_pods_metric_hpa_reports_its_queue_depth() {
        let data = json!({
            "spec": {
                "scaleTargetRef": {"kind": "Deployment", "name": "ollama"},
                "minReplicas": 1, "maxReplicas": 4,
                "metrics": [{"type": "Pods", "pods": {
                    "metric": {"name": "ollama_queue_depth"},
                    "target": {"type": "AverageValue", "averageValue": "2"}}}]
            },
            "status": {
                "currentReplicas": 2, "desiredReplicas": 3,
                "currentMetrics": [{"type": "Pods", "pods": {
                    "metric": {"name": "ollama_queue_depth"},
                    "current": {"averageValue": "2500m"}}}]
            }
        });
        let a = report("ollama", &data);
        assert_eq!(a.metric.as_deref(), Some("ollama_queue_depth"));
        assert_eq!(a.target_value, Some(2.0));
        assert_eq!(a.current_value, Some(2.5));
        assert_eq!((a.min_replicas, a.max_replicas), (1, 4));
        assert_eq!((a.current_replicas, a.desired_replicas), (Some(2), Some(3)));
    }
}
