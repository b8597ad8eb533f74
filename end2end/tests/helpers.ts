import { expect, Browser, Page } from "@playwright/test";

/** Collects page errors (except the `expected` failed responses), console errors and failed responses while a test runs. */
export function watchForErrors(page: Page, expected: RegExp[] = []): () => void {
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(`pageerror: ${e}`));
  page.on("console", (m) => {
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) errors.push(`console: ${m.text()}`);
  });
  page.on("response", (r) => {
    const line = `${r.status()} ${r.url()}`;
    if (r.status() >= 400 && !r.request().isNavigationRequest() && !expected.some((e) => e.test(line))) errors.push(line);
  });
  return () => expect(errors).toEqual([]);
}

/** A new browser context signed in as `username` at the test IdP's login form, left at `path`. */
export async function signIn(browser: Browser, username: string, path: string): Promise<Page> {
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
