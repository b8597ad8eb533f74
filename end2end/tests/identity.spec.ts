import { test, expect, Page } from "@playwright/test";
import { watchForErrors } from "./helpers";

const IDP = process.env.IDP_URL ?? "http://127.0.0.1:8080";

async function signInThroughIdp(page: Page, username: string, password: string) {
  await page.getByTestId("idp-sign-in").click();
  // The IdP's own login form (Keycloak's element ids).
  await expect(page.locator("#kc-form-login")).toBeVisible();
  await page.locator("#username").fill(username);
  await page.locator("#password").fill(password);
  await page.locator("#kc-login").click();
}

async function setIdpGroups(username: string, groups: string[]) {
  const r = await fetch(`${IDP}/test/users/${username}/groups`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(groups),
  });
  expect(r.ok).toBe(true);
}

test.afterEach(async () => {
  await setIdpGroups("mia", ["/team-a", "/team-b"]);
});

test("a member of two teams signs in at the IdP, sees both teams, and signing out ends both sessions", async ({ page }) => {
  const noErrors = watchForErrors(page);
  await page.goto("/teams");
  await expect(page).toHaveURL(/\/signin\?next=%2Fteams$/);

  await signInThroughIdp(page, "mia", "mia-pw");
  await expect(page).toHaveURL(/\/teams$/);
  await expect(page.getByRole("heading", { name: "My teams" })).toBeVisible();
  for (const team of ["team-a", "team-b"]) {
    const card = page.getByTestId(`team-${team}`);
    await expect(card).toBeVisible();
    await expect(card.getByTestId("member-mia").getByTestId("role")).toHaveText("member");
  }
  await expect(page.getByTestId("signed-in-as")).toHaveText("Mia Member");
  // No admin links for a member.
  await expect(page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Admin" })).toHaveCount(0);

  await page.getByTestId("sign-out").click();
  // RP-initiated logout: the IdP confirms, then sends the browser back.
  const confirm = page.getByRole("button", { name: /sign me out/i });
  if (await confirm.isVisible({ timeout: 5_000 }).catch(() => false)) await confirm.click();
  await expect(page.getByTestId("signed-out")).toBeVisible();
  await expect(page.getByTestId("sign-in")).toBeVisible();

  // Protected pages redirect to sign-in again.
  await page.goto("/teams");
  await expect(page).toHaveURL(/\/signin\?next=%2Fteams$/);
  // And the IdP session is gone too: it asks for the password again.
  await page.getByTestId("idp-sign-in").click();
  await expect(page.locator("#kc-form-login")).toBeVisible();
  noErrors();
});

test("a group removed in the IdP is gone after the next sign-in, and the audit log shows it", async ({ page, context }) => {
  await page.goto("/signin");
  await signInThroughIdp(page, "mia", "mia-pw");
  await expect(page.getByTestId("team-team-b")).toBeVisible();
  await page.getByTestId("sign-out").click();
  const confirm = page.getByRole("button", { name: /sign me out/i });
  if (await confirm.isVisible({ timeout: 5_000 }).catch(() => false)) await confirm.click();
  await expect(page.getByTestId("signed-out")).toBeVisible();

  await setIdpGroups("mia", ["/team-a"]);
  await signInThroughIdp(page, "mia", "mia-pw");
  await expect(page.getByTestId("team-team-a")).toBeVisible();
  await expect(page.getByTestId("team-team-b")).toHaveCount(0);

  await context.clearCookies();
  await page.goto("/signin");
  await page.getByTestId("dev-ada").click();
  await page.goto("/admin/audit?action=membership.removed&team=team-b");
  const entry = page.getByTestId("audit-entry").first();
  await expect(entry).toContainText("membership.removed");
  await expect(entry).toContainText("team-b/mia");
});

test("an admin creates a team: a bad slug is named, a good one is created and audited", async ({ page }) => {
  // The rejected slug answers 422, which is the point.
  const noErrors = watchForErrors(page, [/^422 .*\/rpc\/admin_create_team$/]);
  await page.goto("/signin");
  await expect(page.getByTestId("dev-sign-in")).toContainText("Local profile only");
  await page.getByTestId("dev-ada").click();
  await expect(page).toHaveURL(/\/teams$/);
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Admin" }).click();
  await expect(page).toHaveURL(/\/admin\/teams$/);

  // A field is named by its label alone; its hint describes it.
  const slugField = page.getByRole("textbox", { name: "Slug", exact: true });
  await expect(slugField).toHaveAttribute("name", "team[slug]");
  await expect(slugField).toHaveAccessibleDescription("lowercase letters, digits, hyphens");

  const slug = `e2e-${Date.now().toString(36)}`;
  // Retry until hydration has made the form a server action.
  await expect(async () => {
    await page.locator('input[name="team[slug]"]').fill("Not A Slug");
    await page.locator('input[name="team[name]"]').fill("Research");
    await page.getByTestId("create-team").click();
    await expect(page.getByTestId("form-error")).toContainText("slug:", { timeout: 2_000 });
  }).toPass({ timeout: 20_000 });

  await page.locator('input[name="team[slug]"]').fill(slug);
  await page.getByTestId("create-team").click();
  await expect(page.getByTestId("form-ok")).toHaveText(`Created ${slug}`);
  await expect(page.getByTestId(`admin-team-${slug}`)).toBeVisible();

  await page.goto(`/admin/audit?action=team.created&team=${slug}`);
  await expect(page.getByTestId("audit-entry").first()).toContainText("ada");
  noErrors();
});

test("the OpenAPI document is served and documented", async ({ page, request }) => {
  const doc = await (await request.get("/api/v1/openapi.json")).json();
  expect(doc.openapi).toMatch(/^3\.1/);
  await page.goto("/api/docs");
  await expect(page.getByTestId("operation").first()).toBeVisible();
});
