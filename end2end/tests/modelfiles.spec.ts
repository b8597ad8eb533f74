import { test, expect } from "@playwright/test";
import { signIn, watchForErrors } from "./helpers";

// Corral runs with the kubernetes driver against the test apiserver
// (scripts/test): the workload `ollama` has two pods, at 127.0.0.2 and
// 127.0.0.3, where two ollama-sims listen.
const PODS = ["http://127.0.0.2:11434", "http://127.0.0.3:11434"];

/** The seed article's code-review Modelfile, as printed. */
const CODE_REVIEW = `FROM codellama:13b
SYSTEM """You are a senior code reviewer. Review the code you are given for bugs,
security issues and readability. Be concise and specific."""
PARAMETER temperature 0.1 # low temperature for consistent reviews
PARAMETER num_ctx 8192
PARAMETER num_predict 2048
`;

test("errors on lines 2 and 5 are shown at their lines, the save is refused and the draft kept; fixed, it is created", async ({ browser }) => {
  const olu = await signIn(browser, "olu", "/modelfiles");
  const errors = watchForErrors(olu, [/^422 .*\/rpc\/create_modelfile$/]);
  const form = olu.getByTestId("new-modelfile");
  const name = `draft-${Date.now()}`;
  await form.locator('input[name="name"]').fill(name);
  const broken = "FROM llama3.2\nPARAMETER  temperature 0.5\nSYSTEM hello\n\nPARAMETER num_ctx lots\n";
  const editor = form.locator("#modelfile-text");
  await editor.fill(broken);

  // Both errors, at their lines, in the gutter and in the list.
  await expect(form.getByTestId("gutter").locator('[data-line="2"]')).toHaveAttribute("data-state", "error");
  await expect(form.getByTestId("gutter").locator('[data-line="5"]')).toHaveAttribute("data-state", "error");
  await expect(form.getByTestId("gutter").locator('[data-line="1"]')).toHaveAttribute("data-state", "ok");
  await expect(form.getByTestId("diagnostics").locator('li[data-severity="error"]')).toHaveCount(2);
  await expect(form.getByTestId("diagnostics").locator('li[data-line="2"]')).toBeVisible();
  await expect(form.getByTestId("diagnostics").locator('li[data-line="5"]')).toContainText("num_ctx");
  await expect(form.getByTestId("check-summary")).toContainText("2 errors");

  // Saving is refused, and the draft is still there.
  await form.locator('input[name="message"]').fill("first try");
  await form.getByRole("button", { name: "Create" }).click();
  await expect(form.getByTestId("form-error")).toContainText("line 2");
  await expect(editor).toHaveValue(broken);
  await expect(olu).toHaveURL(/\/modelfiles$/);

  // Fixed: no marks, the request preview, created, its page opens.
  await editor.fill("FROM llama3.2\nPARAMETER temperature 0.5\nSYSTEM hello\n\nPARAMETER num_ctx 4096\n");
  await expect(form.getByTestId("check-summary")).toHaveText("Ollama would accept this Modelfile.");
  await expect(form.getByTestId("gutter").locator('[data-state="error"]')).toHaveCount(0);
  await expect(form.getByTestId("request-preview")).toContainText('"num_ctx": 4096');
  await form.getByRole("button", { name: "Create" }).click();
  await expect(olu).toHaveURL(/\/modelfiles\/[0-9a-f-]{36}$/);
  await expect(olu.getByTestId("modelfile-name")).toHaveText(`team-a/${name}:latest`);
  errors();
});

test("the seed's code-review Modelfile: refused where Ollama refuses it, fixed in one click, deployed to both pods; v2, diff, rollback, drift", async ({ browser }) => {
  test.setTimeout(120_000);
  const olu = await signIn(browser, "olu", "/modelfiles");
  const errors = watchForErrors(olu);
  const form = olu.getByTestId("new-modelfile");
  const name = `review-${Date.now()}`;
  await form.locator('input[name="name"]').fill(name);
  const editor = form.locator("#modelfile-text");
  await editor.fill(CODE_REVIEW);

  // Line 4, as Ollama: the comment is part of the float. One click fixes it.
  const error = form.getByTestId("diagnostics").locator('li[data-severity="error"]');
  await expect(error).toHaveCount(1);
  await expect(error).toHaveAttribute("data-line", "4");
  await expect(error).toContainText("invalid float value");
  await error.getByTestId("apply-fix").click();
  await expect(form.getByTestId("check-summary")).toHaveText("Ollama would accept this Modelfile.");
  await expect(form.getByTestId("request-preview")).toContainText('"temperature": 0.1');
  await expect(form.getByTestId("request-preview")).toContainText('"num_ctx": 8192');
  await expect(form.getByTestId("request-preview")).toContainText('"num_predict": 2048');
  await form.locator('input[name="message"]').fill("the seed's reviewer");
  await form.getByRole("button", { name: "Create" }).click();
  await expect(olu).toHaveURL(/\/modelfiles\/[0-9a-f-]{36}$/);
  const page = olu.url();

  // Deploy v1 to both pods, with progress on the operation's page.
  await olu.getByTestId("deploy-button").click();
  await olu.getByTestId("deploy-operation").click();
  await expect(olu.getByTestId("operation-title")).toHaveText(`create team-a/${name}:latest`);
  await expect(olu.getByTestId("operation-state")).toHaveText("succeeded", { timeout: 60_000 });
  for (const pod of PODS) {
    const tags = await (await fetch(`${pod}/api/tags`)).json();
    expect(tags.models.map((m: { name: string }) => m.name)).toContain(`team-a/${name}:latest`);
  }

  // v2 changes one line; the diff shows exactly it.
  await olu.goto(page);
  await expect(olu.getByTestId("deployed")).toContainText("v1 on ollama");
  const text = olu.getByTestId("editor").locator("#modelfile-text");
  const v1 = await text.inputValue();
  await text.fill(v1.replace("PARAMETER num_ctx 8192", "PARAMETER num_ctx 16384"));
  await olu.getByTestId("editor").locator('input[name="message"]').fill("longer context");
  await olu.getByTestId("save").click();
  await expect(olu.getByTestId("editor").getByTestId("form-ok")).toContainText("version 2");
  await olu.getByTestId("compare").click();
  await expect(olu.getByTestId("diff-summary")).toContainText("v1 → v2: 2 line(s) changed");
  await expect(olu.getByTestId("diff").locator('[data-change="removed"]')).toHaveText(["PARAMETER num_ctx 8192"]);
  await expect(olu.getByTestId("diff").locator('[data-change="added"]')).toHaveText(["PARAMETER num_ctx 16384"]);

  // Roll back to v1: v3 equals v1; deploy v3; drift is clear.
  await olu.getByTestId("rollback-1").click();
  await expect(olu.getByTestId("version-3")).toContainText("(= v1)");
  await expect(olu.getByTestId("editor").locator("#modelfile-text")).toHaveValue(v1);
  await olu.getByTestId("deploy").locator('select[name="version"]').selectOption("3");
  await olu.getByTestId("deploy-button").click();
  await olu.getByTestId("deploy-operation").click();
  await expect(olu.getByTestId("operation-state")).toHaveText("succeeded", { timeout: 60_000 });
  await olu.goto(page);
  await expect(olu.getByTestId("deployed")).toContainText("v3 on ollama");
  await olu.getByTestId("check-drift").click();
  await expect(olu.getByTestId("drift-state")).toHaveAttribute("data-drifted", "false");
  await expect(olu.getByTestId("pod-drift")).toHaveCount(2);

  // Behind Corral's back, one pod gets another temperature: drift.
  const res = await fetch(`${PODS[1]}/api/create`, {
    method: "POST",
    body: JSON.stringify({ model: `team-a/${name}`, from: "codellama:13b", parameters: { temperature: 0.9, num_ctx: 8192, num_predict: 2048 }, stream: false }),
  });
  expect(res.ok).toBeTruthy();
  await olu.getByTestId("check-drift").click();
  await expect(olu.getByTestId("drift-state")).toHaveAttribute("data-drifted", "true");
  await expect(olu.getByTestId("drift")).toContainText("temperature");
  await expect(olu.getByTestId("redeploy")).toBeVisible();

  // The cluster page flags it too.
  await olu.goto("/cluster");
  await expect(olu.getByTestId("cluster-modelfile").filter({ hasText: `team-a/${name}:latest` })).toContainText("drift on");
  errors();
});
