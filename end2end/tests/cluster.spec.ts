import { test, expect, Page, Browser } from "@playwright/test";
import { watchForErrors } from "./helpers";

// The local profile runs two simulated Ollama pods (sim.pods = 2) and the
// static cluster driver sees both.
const PODS = ["127.0.0.1:11434", "127.0.0.1:11436"];

async function signIn(browser: Browser, username: string, path: string): Promise<Page> {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(path);
  await expect(page).toHaveURL(/\/signin\?next=/);
  await page.getByTestId("idp-sign-in").click();
  await page.locator("#username").fill(username);
  await page.locator("#password").fill(`${username}-pw`);
  await page.locator("#kc-login").click();
  await expect(page).toHaveURL(new RegExp(`${path.replace(/\//g, "\\/")}$`));
  return page;
}

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
