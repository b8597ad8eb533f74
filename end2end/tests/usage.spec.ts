import { test, expect, Browser, Page } from "@playwright/test";
import { watchForErrors } from "./helpers";

// The team usage dashboard with the Prometheus scripts/test runs beside
// Corral (scraping its gateway every second).

const GATEWAY = process.env.GATEWAY_URL ?? "http://127.0.0.1:11435";
const ORIGIN = process.env.BASE_URL ?? "http://127.0.0.1:3000";

async function signIn(browser: Browser, username: string, path: string): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  await page.goto(path);
  await expect(page).toHaveURL(/\/signin\?next=/);
  await page.getByTestId("idp-sign-in").click();
  await page.locator("#username").fill(username);
  await page.locator("#password").fill(`${username}-pw`);
  await page.locator("#kc-login").click();
  await expect(page).toHaveURL(new RegExp(path.replace(/[?]/g, "\\?") + "$"));
  return page;
}

/** A key of team-a for mia through the REST API: asked, approved by olu, collected. */
async function teamAKey(mia: Page, olu: Page): Promise<string> {
  const headers = { origin: ORIGIN };
  const asked = await mia.request.post("/api/v1/teams/team-a/key-requests", { headers, data: { name: `usage-${Date.now()}` } });
  expect(asked.status()).toBe(201);
  const id = (await asked.json()).request.id;
  const decided = await olu.request.post(`/api/v1/key-requests/${id}/decision`, { headers, data: { approve: true } });
  expect(decided.status()).toBe(200);
  const claimed = await mia.request.post(`/api/v1/key-requests/${id}/claim`, { headers, data: {} });
  expect(claimed.status()).toBe(201);
  return (await claimed.json()).secret;
}

test("the usage dashboard draws charts with axes and a legend, and the range picker changes them", async ({ browser }) => {
  test.setTimeout(90_000);
  const page = await signIn(browser, "mia", "/teams/team-a/usage?range=1h");
  const errors = watchForErrors(page);
  const olu = await signIn(browser, "olu", "/teams/team-a/keys");
  const secret = await teamAKey(page, olu);
  // Traffic over a few scrapes: a chat a second, streamed, for 8 s.
  for (let i = 0; i < 8; i++) {
    const r = await page.request.post(`${GATEWAY}/api/chat`, {
      headers: { authorization: `Bearer ${secret}` },
      data: { model: "llama3.2", messages: [{ role: "user", content: `chart ${i}` }] },
    });
    expect(r.status()).toBe(200);
    await page.waitForTimeout(1_000);
  }

  // Charts from Prometheus, not the banner; team-a's model in the legend
  // once a scrape has seen it.
  const requests = page.getByTestId("chart-requests");
  await expect(async () => {
    await page.reload();
    await expect(page.getByTestId("metrics-banner")).toHaveCount(0, { timeout: 1_000 });
    await expect(requests.getByTestId("chart-legend")).toContainText("llama3.2:latest", { timeout: 1_000 });
    // A line, not a lone point: the rate over the last minute is above 0.
    await expect(requests.locator("svg desc")).not.toContainText("latest 0 req/s", { timeout: 1_000 });
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
  await page.context().close();
  await olu.context().close();
});
