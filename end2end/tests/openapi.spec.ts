import { test, expect } from "@playwright/test";
import SwaggerParser from "@apidevtools/swagger-parser";

test("the OpenAPI document validates against the OpenAPI 3.1 schema", async ({ request }) => {
  const doc = await (await request.get("/api/v1/openapi.json")).json();
  // Throws with the first schema violation.
  const api = (await SwaggerParser.validate(structuredClone(doc))) as any;
  expect(api.openapi).toMatch(/^3\.1/);
  expect(Object.keys(api.paths)).toEqual(
    expect.arrayContaining(["/api/v1/me", "/api/v1/teams", "/api/v1/teams/{slug}", "/api/v1/audit"]),
  );
});
