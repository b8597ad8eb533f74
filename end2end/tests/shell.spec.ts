import { test, expect } from "@playwright/test";
import { watchForErrors } from "./helpers";

test("runs in Debian's Chromium", async ({ browser }) => {
  const name = browser.browserType().name();
  console.log(`browser: ${name} ${browser.version()}`);
  expect(name).toBe("chromium");
});

test("home page renders server-side with the live state of Postgres", async ({ page }) => {
  const noErrors = watchForErrors(page);
  await page.goto("/");
  await expect(page).toHaveTitle("Corral");
  await expect(page.getByRole("heading", { level: 1 })).toHaveText("Ollama, run as team infrastructure");
  await expect(page.getByTestId("profile-badge")).toHaveText("Local development");
  await expect(page.locator("aside li", { hasText: "PostgreSQL" })).toContainText("Healthy");
  // Tailwind utilities were compiled into /pkg/corral.css.
  await expect(page.getByRole("heading", { level: 1 })).toHaveCSS("font-weight", "600");
  noErrors();
});

test("hydration makes the status page interactive", async ({ page }) => {
  const noErrors = watchForErrors(page);
  await page.goto("/status");
  await expect(page.getByTestId("dependency-postgres").getByTestId("state")).toHaveText("Healthy");
  await expect(page.getByTestId("dependency-migrations").getByTestId("state")).toHaveText("Healthy");
  await expect(page.getByTestId("status-summary")).toHaveText("All systems operational");

  // Clicks before the wasm has hydrated are lost: retry until one takes effect.
  const checkedAt = page.getByTestId("checked-at");
  const first = await checkedAt.textContent();
  await expect(async () => {
    await page.getByTestId("recheck").click();
    await expect(checkedAt).not.toHaveText(first!, { timeout: 1_000 });
  }).toPass({ timeout: 20_000 });
  noErrors();
});

test("navigation between pages happens in the browser without a reload", async ({ page }) => {
  await page.goto("/status");
  await expect(page.getByTestId("dependency-postgres")).toBeVisible();
  // Wait until the wasm has hydrated (a recheck takes effect): a link
  // clicked before that is an ordinary page load, not a client-side one.
  const checkedAt = page.getByTestId("checked-at");
  const first = await checkedAt.textContent();
  await expect(async () => {
    await page.getByTestId("recheck").click();
    await expect(checkedAt).not.toHaveText(first!, { timeout: 1_000 });
  }).toPass({ timeout: 20_000 });
  await page.evaluate(() => ((window as any).__sameDocument = true));
  await expect(async () => {
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Home" }).click();
    await expect(page).toHaveURL(/\/$/, { timeout: 1_000 });
  }).toPass({ timeout: 20_000 });
  await expect(page.getByRole("heading", { level: 1 })).toHaveText("Ollama, run as team infrastructure");
  expect(await page.evaluate(() => (window as any).__sameDocument)).toBe(true);
});

test("an unknown address gets the 404 page and status", async ({ page }) => {
  const response = await page.goto("/no/such/page");
  expect(response?.status()).toBe(404);
  await expect(page.getByTestId("not-found")).toContainText("Page not found");
  await expect(page.getByTestId("not-found")).toContainText("/no/such/page");
  await expect(page).toHaveTitle("Page not found · Corral");
});

test("probes answer", async ({ request }) => {
  expect((await request.get("/healthz")).status()).toBe(200);
  const ready = await request.get("/readyz");
  expect(ready.status()).toBe(200);
  expect((await ready.json()).status).toBe("ready");
  const metrics = await (await request.get("/metrics")).text();
  expect(metrics).toContain("corral_http_requests_total");
});
