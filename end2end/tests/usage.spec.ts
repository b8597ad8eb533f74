import { test, expect } from "@playwright/test";
import { watchForErrors } from "./helpers";

// The team usage dashboard with the Prometheus scripts/test runs beside
// Corral (scraping its gateway every second). keys.spec.ts, which runs
// before this file, has sent team-a's traffic through the gateway.

test("the usage dashboard draws charts with axes and a legend, and the range picker changes them", async ({ browser }) => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const errors = watchForErrors(page);
  await page.goto("/teams/team-a/usage?range=1h");
  await expect(page).toHaveURL(/\/signin\?next=/);
  await page.getByTestId("idp-sign-in").click();
  await page.locator("#username").fill("mia");
  await page.locator("#password").fill("mia-pw");
  await page.locator("#kc-login").click();
  await expect(page).toHaveURL(/\/teams\/team-a\/usage\?range=1h$/);

  // Charts from Prometheus, not the banner; team-a's model in the legend
  // once a scrape has seen it.
  const requests = page.getByTestId("chart-requests");
  await expect(async () => {
    await page.reload();
    await expect(page.getByTestId("metrics-banner")).toHaveCount(0, { timeout: 1_000 });
    await expect(requests.getByTestId("chart-legend")).toContainText("llama3.2:latest", { timeout: 1_000 });
  }).toPass({ timeout: 30_000 });
  for (const id of ["requests", "tokens", "errors", "latency", "ttft"]) {
    await expect(page.getByTestId(`chart-${id}`).locator("svg[role=img]")).toBeVisible();
  }
  // Axes with units, a title and a description for screen readers, values
  // on hover and as a table.
  const svg = requests.locator("svg[role=img]");
  await expect(svg.locator("title#requests-title")).toHaveText("Requests per second");
  await expect(svg.locator("desc")).toContainText("llama3.2:latest");
  await expect(svg.locator("text", { hasText: "req/s" }).first()).toBeAttached();
  expect(await svg.locator("circle > title").count()).toBeGreaterThan(0);
  await requests.locator("summary").click();
  await expect(requests.locator("table tbody tr").first()).toBeVisible();

  await page.screenshot({ path: "snapshots/usage-dashboard.png", fullPage: true });

  // The range picker: 24 h draws every 15 minutes instead of every 30 s.
  await expect(page.getByTestId("usage-range")).toContainText("a point every 30 s");
  await page.getByTestId("range-picker").getByRole("link", { name: "24h" }).click();
  await expect(page).toHaveURL(/range=24h/);
  await expect(page.getByTestId("usage-range")).toContainText("a point every 15 min");
  await expect(page.getByTestId("chart-requests").locator("svg[role=img]")).toBeVisible();

  // The exports are one click away and exact.
  const csv = await page.request.get((await page.getByTestId("export-csv").getAttribute("href"))!);
  expect(csv.status()).toBe(200);
  expect(await csv.text()).toContain("llama3.2:latest");

  errors();
  await context.close();
});
