import { expect, Page } from "@playwright/test";

/** Collects page errors, console errors and failed responses while a test runs. */
export function watchForErrors(page: Page): () => void {
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(`pageerror: ${e}`));
  page.on("console", (m) => {
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) errors.push(`console: ${m.text()}`);
  });
  page.on("response", (r) => {
    if (r.status() >= 400 && !r.request().isNavigationRequest()) errors.push(`${r.status()} ${r.url()}`);
  });
  return () => expect(errors).toEqual([]);
}
