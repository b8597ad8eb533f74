// The browser tests' side of the test Kubernetes API server
// (scripts/k8s/start): set up the namespace Corral's `kubernetes` driver
// manages, and read back what Corral did there. Plain HTTPS with the admin
// kubeconfig's CA and token; no kubectl needed.
//
//   node k8s.cjs setup KUBECONFIG NAMESPACE OUT   (before Corral starts)
//
// `setup` creates the namespace, the shipped ServiceAccount + Role +
// RoleBinding (k8s/base/portal/rbac.yaml), a Node `gpu-node-1`, a Deployment `ollama` of two
// replicas asking for a GPU, plays the kubelet for its two pods (Running,
// Ready, pod IPs 127.0.0.2 and 127.0.0.3, where scripts/test runs two
// ollama-sims on port 11434), and writes the service account's kubeconfig
// to OUT for Corral.
"use strict";
const fs = require("node:fs");
const https = require("node:https");
const path = require("node:path");
const YAML = require("yaml");

function kubeconfig(file) {
  const kc = YAML.parse(fs.readFileSync(file, "utf8"));
  const cluster = kc.clusters[0].cluster;
  return {
    server: cluster.server,
    caFile: cluster["certificate-authority"],
    ca: fs.readFileSync(cluster["certificate-authority"]),
    token: kc.users[0].user.token,
  };
}

/** One API call; the parsed answer, or an error with the API's message. */
function call(kc, method, urlPath, body, contentType = "application/json") {
  const url = new URL(urlPath, kc.server);
  const data = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = https.request(
      url,
      {
        method,
        ca: kc.ca,
        headers: {
          Authorization: `Bearer ${kc.token}`,
          Accept: "application/json",
          ...(data ? { "Content-Type": contentType, "Content-Length": Buffer.byteLength(data) } : {}),
        },
      },
      (res) => {
        let text = "";
        res.on("data", (c) => (text += c));
        res.on("end", () => {
          const parsed = text ? JSON.parse(text) : {};
          if (res.statusCode >= 400) {
            const e = new Error(`${method} ${urlPath}: ${res.statusCode} ${parsed.message ?? text}`);
            e.status = res.statusCode;
            reject(e);
          } else resolve(parsed);
        });
      },
    );
    req.on("error", reject);
    if (data) req.write(data);
    req.end();
  });
}

const plural = { ServiceAccount: "serviceaccounts", Role: "roles", RoleBinding: "rolebindings" };
function collection(apiVersion, kind, ns) {
  const base = apiVersion.includes("/") ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
  return `${base}/namespaces/${ns}/${plural[kind]}`;
}

async function hpaVersion(kc) {
  const group = await call(kc, "GET", "/apis/autoscaling");
  const versions = group.versions.map((v) => v.version);
  return ["v2", "v2beta2"].find((v) => versions.includes(v));
}

async function pods(kc, ns) {
  const list = await call(kc, "GET", `/api/v1/namespaces/${ns}/pods?labelSelector=app%3Dollama`);
  return list.items
    .filter((p) => !p.metadata.deletionTimestamp)
    .map((p) => p.metadata.name)
    .sort();
}

async function runPod(kc, ns, pod, ip) {
  await call(kc, "POST", `/api/v1/namespaces/${ns}/pods/${pod}/binding`, {
    apiVersion: "v1",
    kind: "Binding",
    metadata: { name: pod },
    target: { apiVersion: "v1", kind: "Node", name: "gpu-node-1" },
  });
  await call(
    kc,
    "PATCH",
    `/api/v1/namespaces/${ns}/pods/${pod}/status`,
    {
      status: {
        phase: "Running",
        podIP: ip,
        hostIP: "127.0.0.1",
        conditions: [
          { type: "PodScheduled", status: "True" },
          { type: "Initialized", status: "True" },
          { type: "ContainersReady", status: "True" },
          { type: "Ready", status: "True" },
        ],
      },
    },
    "application/merge-patch+json",
  );
}

async function setup(kubeconfigFile, ns, out) {
  const kc = kubeconfig(kubeconfigFile);
  // The node the pods run on must exist: the controller manager's pod
  // garbage collector deletes pods bound to a node that does not (after
  // 40 s), and the Deployment would replace them with unscheduled ones.
  try {
    await call(kc, "POST", "/api/v1/nodes", {
      metadata: { name: "gpu-node-1", labels: { "nvidia.com/gpu.present": "true" } },
    });
  } catch (e) {
    if (e.status !== 409) throw e;
  }
  await call(kc, "POST", "/api/v1/namespaces", { metadata: { name: ns } });
  const rbac = YAML.parseAllDocuments(
    fs.readFileSync(path.join(__dirname, "..", "k8s", "base", "portal", "rbac.yaml"), "utf8"),
  ).map((d) => d.toJS());
  for (const obj of rbac) await call(kc, "POST", collection(obj.apiVersion, obj.kind, ns), obj);
  await call(kc, "POST", `/apis/apps/v1/namespaces/${ns}/deployments`, {
    metadata: { name: "ollama", labels: { app: "ollama" } },
    spec: {
      replicas: 2,
      selector: { matchLabels: { app: "ollama" } },
      template: {
        metadata: { labels: { app: "ollama" } },
        spec: {
          containers: [
            {
              name: "ollama",
              image: "ollama/ollama:0.13.0",
              ports: [{ name: "http", containerPort: 11434 }],
              resources: { limits: { "nvidia.com/gpu": "1" } },
            },
          ],
        },
      },
    },
  });
  let names = [];
  for (let i = 0; i < 300 && names.length !== 2; i++) {
    await new Promise((r) => setTimeout(r, 200));
    names = await pods(kc, ns);
  }
  if (names.length !== 2) throw new Error(`the controller manager made ${names.length} pods, not 2`);
  await runPod(kc, ns, names[0], "127.0.0.2");
  await runPod(kc, ns, names[1], "127.0.0.3");
  const token = await call(kc, "POST", `/api/v1/namespaces/${ns}/serviceaccounts/corral/token`, {
    apiVersion: "authentication.k8s.io/v1",
    kind: "TokenRequest",
    spec: { audiences: ["https://kubernetes.default.svc"], expirationSeconds: 86400 },
  });
  fs.writeFileSync(
    out,
    YAML.stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "test", cluster: { server: kc.server, "certificate-authority": kc.caFile } }],
      users: [{ name: "corral", user: { token: token.status.token } }],
      contexts: [{ name: "test", context: { cluster: "test", user: "corral", namespace: ns } }],
      "current-context": "test",
    }),
  );
}

module.exports = { kubeconfig, call, pods, hpaVersion };

if (require.main === module) {
  const [cmd, ...args] = process.argv.slice(2);
  if (cmd !== "setup" || args.length !== 3) {
    console.error("usage: node k8s.cjs setup KUBECONFIG NAMESPACE OUT");
    process.exit(2);
  }
  setup(...args).catch((e) => {
    console.error(`k8s setup: ${e.message}`);
    process.exit(1);
  });
}
