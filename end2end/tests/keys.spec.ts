import { test, expect, Page, Browser } from "@playwright/test";
import { execFileSync } from "node:child_process";
import { watchForErrors } from "./helpers";

// The gateway `corral` serves beside the portal (local profile), in front of
// the built-in Ollama simulator.
const GATEWAY = process.env.GATEWAY_URL ?? "http://127.0.0.1:11435";

async function signIn(browser: Browser, username: string): Promise<Page> {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto("/teams/team-a/keys");
  await expect(page).toHaveURL(/\/signin\?next=/);
  await page.getByTestId("idp-sign-in").click();
  await expect(page.locator("#kc-form-login")).toBeVisible();
  await page.locator("#username").fill(username);
  await page.locator("#password").fill(`${username}-pw`);
  await page.locator("#kc-login").click();
  await expect(page).toHaveURL(/\/teams\/team-a\/keys$/);
  return page;
}

test("a member requests a key, the owner approves, the secret is shown once, curl streams a chat through the gateway, and the team sees the usage", async ({ browser }) => {
  const keyName = `notebook-${Date.now()}`;

  // mia (member of team-a) asks for a key.
  const mia = await signIn(browser, "mia");
  const miaErrors = watchForErrors(mia);
  await expect(mia.getByRole("heading", { name: /Team team-a/ })).toBeVisible();
  await mia.locator("input[name=name]").fill(keyName);
  await mia.locator("input[name=purpose]").fill("end-to-end test");
  await mia.getByTestId("request-key").click();
  await expect(mia.getByTestId("form-ok")).toContainText("waits for approval");
  const row = mia.getByTestId(`request-${keyName}`);
  await expect(row.getByTestId("request-state")).toHaveText("pending");
  // A member cannot approve.
  await expect(row.getByTestId("approve")).toHaveCount(0);

  // olu (owner of team-a) approves.
  const olu = await signIn(browser, "olu");
  const oluErrors = watchForErrors(olu);
  const oluRow = olu.getByTestId(`request-${keyName}`);
  await expect(oluRow.getByTestId("request-state")).toHaveText("pending");
  await oluRow.getByTestId("approve").click();
  await expect(oluRow.getByTestId("request-state")).toHaveText("approved");
  // The owner never gets the secret.
  await expect(oluRow.getByTestId("collect")).toHaveCount(0);
  await expect(olu.getByTestId("new-key-secret")).toHaveCount(0);

  // mia collects it: the secret is shown once.
  await mia.reload();
  await expect(row.getByTestId("request-state")).toHaveText("approved");
  await row.getByTestId("collect").click();
  const secretBox = mia.getByTestId("new-key-secret");
  await expect(secretBox).toBeVisible();
  const secret = (await secretBox.textContent())!.trim();
  expect(secret).toMatch(/^crl_[0-9A-Za-z]{12}_[0-9A-Za-z]{38}$/);
  await expect(row.getByTestId("request-state")).toHaveText("issued");
  await expect(mia.getByTestId(`key-${keyName}`)).toContainText("active");
  // …and never again.
  await mia.reload();
  await expect(mia.getByTestId(`key-${keyName}`)).toBeVisible();
  await expect(mia.getByTestId("new-key-secret")).toHaveCount(0);
  expect(await mia.content()).not.toContain(secret);

  // curl streams a chat through the gateway with it.
  const out = execFileSync("curl", [
    "-sS", "-N", "--fail-with-body",
    `${GATEWAY}/api/chat`,
    "-H", `Authorization: Bearer ${secret}`,
    "-d", JSON.stringify({ model: "llama3.2", messages: [{ role: "user", content: "Say hello from the end-to-end test" }] }),
  ], { encoding: "utf8", timeout: 30_000 });
  const lines = out.trim().split("\n").map((l) => JSON.parse(l));
  expect(lines.length).toBeGreaterThan(2);
  expect(lines[0].done).toBe(false);
  const last = lines[lines.length - 1];
  expect(last.done).toBe(true);
  expect(last.eval_count).toBeGreaterThan(0);

  // Without the key, the gateway refuses before Ollama.
  const refused = execFileSync("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", `${GATEWAY}/api/tags`], { encoding: "utf8" });
  expect(refused).toBe("401");

  // The team sees the usage, counted from Ollama's own final chunk.
  await mia.goto("/teams/team-a/usage");
  await expect(async () => {
    await mia.reload();
    await expect(mia.getByTestId("usage-requests")).not.toHaveText("0", { timeout: 1_000 });
  }).toPass({ timeout: 15_000 });
  const completion = Number(await mia.getByTestId("usage-completion").textContent());
  expect(completion).toBeGreaterThanOrEqual(last.eval_count);
  await expect(mia.getByTestId("usage-model-llama3.2:latest")).toBeVisible();
  await expect(mia.getByTestId("usage-recent")).toContainText("/api/chat");

  miaErrors();
  oluErrors();
});
