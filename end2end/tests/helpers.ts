import { expect, Page } from "@playwright/test";

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
