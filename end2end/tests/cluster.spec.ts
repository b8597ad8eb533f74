import { test, expect, Page } from "@playwright/test";
import { signIn, watchForErrors } from "./helpers";

// Corral runs here with the kubernetes driver against the test apiserver
// (scripts/test): a Deployment `ollama` of two pods whose kubelet
// end2end/k8s.cjs plays, at 127.0.0.2 and 127.0.0.3, where two ollama-sims
// listen.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const k8s = require("../k8s.cjs");
const KC = k8s.kubeconfig(process.env.TEST_KUBECONFIG);
const NS: string = process.env.TEST_NAMESPACE ?? "corral-e2e";
let PODS: string[] = [];

test.beforeAll(async () => {
  PODS = await k8s.pods(KC, NS);
  expect(PODS).toHaveLength(2);
});

/** The percent a pod's bar shows (aria-valuenow), or -1 before it has one. */
async function percent(page: Page, pod: string): Promise<number> {
  const bar = page.getByTestId(`step-${pod}`).getByRole("progressbar");
  if ((await bar.count()) === 0) return -1;
  const v = await bar.getAttribute("aria-valuenow");
  return v === null ? -1 : Number(v);
}

test("an admin pulls a model onto both pods with live progress that survives a reload, and cancels another pull on every pod", async ({ browser }) => {
  test.setTimeout(90_000);
  const model = `e2e-${Date.now()}`;
  const ada = await signIn(browser, "ada", "/cluster");
  const errors = watchForErrors(ada);
  for (const pod of PODS) {
    await expect(ada.getByTestId(`pod-${pod}`)).toContainText("ready");
    await expect(ada.getByTestId(`pod-${pod}`).getByTestId("model-llama3.2:latest")).toBeVisible();
  }

  // Start the pull; follow it to its page.
  await ada.getByTestId("pull-model").fill(model);
  await ada.getByTestId("start-pull").click();
  await ada.getByTestId("started-link").click();
  await expect(ada).toHaveURL(/\/operations\/[0-9a-f-]{36}$/);
  await expect(ada.getByTestId("operation-title")).toHaveText(`pull ${model}:latest`);

  // Both bars appear and advance, pushed by the server.
  for (const pod of PODS) {
    await expect.poll(() => percent(ada, pod), { timeout: 15_000 }).toBeGreaterThan(0);
  }
  const before = await percent(ada, PODS[0]);

  // A reload mid-pull shows the same bars, still moving.
  await ada.reload();
  for (const pod of PODS) {
    await expect(ada.getByTestId(`step-${pod}`)).toBeVisible();
    await expect.poll(() => percent(ada, pod), { timeout: 15_000 }).toBeGreaterThanOrEqual(before);
  }
  await expect(ada.getByTestId("operation-state")).toHaveText("succeeded", { timeout: 30_000 });
  for (const pod of PODS) {
    await expect(ada.getByTestId(`step-${pod}`).getByTestId("step-state")).toHaveText("succeeded");
    expect(await percent(ada, pod)).toBe(100);
  }

  // The model is now on both pods.
  await ada.goto("/cluster");
  for (const pod of PODS) {
    await expect(ada.getByTestId(`pod-${pod}`).getByTestId(`model-${model}:latest`)).toBeVisible();
  }

  // Another pull, cancelled mid-way: it stops on every pod, and says what
  // Ollama may still do.
  const other = `${model}-cancelled`;
  await ada.getByTestId("pull-model").fill(other);
  await ada.getByTestId("start-pull").click();
  await ada.getByTestId("started-link").click();
  for (const pod of PODS) {
    await expect.poll(() => percent(ada, pod), { timeout: 15_000 }).toBeGreaterThan(0);
  }
  await ada.getByTestId("cancel").click();
  await expect(ada.getByTestId("operation-state")).toHaveText("cancelled", { timeout: 10_000 });
  for (const pod of PODS) {
    await expect(ada.getByTestId(`step-${pod}`).getByTestId("step-state")).toHaveText("cancelled");
  }
  await expect(ada.getByTestId("operation-outcome")).toContainText("ollama/ollama#13142");
  await ada.goto("/cluster");
  for (const pod of PODS) {
    await expect(ada.getByTestId(`pod-${pod}`).getByTestId(`model-${other}:latest`)).toHaveCount(0);
  }
  errors();
});

test("a member sees the cluster without pod addresses or forms, and no other team's operations", async ({ browser }) => {
  const mia = await signIn(browser, "mia", "/cluster");
  const errors = watchForErrors(mia);
  await expect(mia.getByTestId(`pod-${PODS[0]}`)).toBeVisible();
  await expect(mia.getByTestId(`pod-${PODS[0]}`)).not.toContainText("http://");
  await expect(mia.getByTestId("start-pull")).toHaveCount(0);
  await expect(mia.getByTestId("start-scale")).toHaveCount(0);
  // The platform's pulls above are not hers to see.
  await mia.goto("/operations");
  await expect(mia.getByTestId("operations")).toContainText("No operations.");
  errors();
});

test("an admin scales the Deployment from the portal: beyond the limit is refused, the change is in the apiserver and the audit log, and with an HPA its bounds move instead", async ({ browser }) => {
  test.setTimeout(90_000);
  const ada = await signIn(browser, "ada", "/cluster");
  const errors = watchForErrors(ada, [/^422 .*\/rpc\/start_operation$/]);
  await expect(ada.getByTestId("scale-rule")).toContainText("Between 1 and 4");

  // Beyond the maximum: refused, the limit named, nothing queued.
  await ada.getByTestId("scale-replicas").fill("9");
  await ada.getByTestId("start-scale").click();
  await expect(ada.getByTestId("scale-outcome").getByTestId("form-error")).toContainText("4");

  // Three replicas: the Deployment's spec.replicas changes in the apiserver.
  await ada.getByTestId("scale-replicas").fill("3");
  await ada.getByTestId("start-scale").click();
  await ada.getByTestId("scale-outcome").getByTestId("started-link").click();
  await expect(ada.getByTestId("operation-state")).toHaveText("succeeded", { timeout: 20_000 });
  await expect(ada.getByTestId("operation-outcome")).toContainText("replicas 2 → 3");
  const deployment = await k8s.call(KC, "GET", `/apis/apps/v1/namespaces/${NS}/deployments/ollama`);
  expect(deployment.spec.replicas).toBe(3);

  // The new pod has no kubelet here: shown pending, with why, not healthy.
  await expect.poll(async () => (await k8s.pods(KC, NS)).length, { timeout: 15_000 }).toBe(3);
  const added = (await k8s.pods(KC, NS)).find((p: string) => !PODS.includes(p));
  await ada.goto("/cluster");
  await expect(ada.getByTestId(`pod-${added}`)).toContainText("pending");
  await expect(ada.getByTestId(`pod-${added}`)).toContainText("Not running");

  // The audit log has it.
  await ada.goto("/admin/audit?action=operation.scale");
  await expect(ada.getByTestId("audit-entry").first()).toContainText("operation.scale");

  // An HPA takes over the replicas: scaling now moves its bounds.
  const version = await k8s.hpaVersion(KC);
  await k8s.call(KC, "POST", `/apis/autoscaling/${version}/namespaces/${NS}/horizontalpodautoscalers`, {
    apiVersion: `autoscaling/${version}`,
    kind: "HorizontalPodAutoscaler",
    metadata: { name: "ollama" },
    spec: {
      scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name: "ollama" },
      minReplicas: 1,
      maxReplicas: 4,
      metrics: [{ type: "Pods", pods: { metric: { name: "ollama_queue_depth" }, target: { type: "AverageValue", averageValue: "2" } } }],
    },
  });
  await ada.goto("/cluster");
  await expect(ada.getByTestId("autoscaler")).toContainText("1–4 replicas on ollama_queue_depth");
  await expect(ada.getByTestId("scale-rule")).toContainText("HorizontalPodAutoscaler ollama owns the replicas");
  await ada.getByTestId("scale-replicas").fill("4");
  await ada.getByTestId("start-scale").click();
  await ada.getByTestId("scale-outcome").getByTestId("started-link").click();
  await expect(ada.getByTestId("operation-state")).toHaveText("succeeded", { timeout: 20_000 });
  await expect(ada.getByTestId("operation-outcome")).toContainText("HorizontalPodAutoscaler ollama owns the replicas");
  const hpa = await k8s.call(KC, "GET", `/apis/autoscaling/${version}/namespaces/${NS}/horizontalpodautoscalers/ollama`);
  expect([hpa.spec.minReplicas, hpa.spec.maxReplicas]).toEqual([4, 4]);
  errors();
});
