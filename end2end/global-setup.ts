// `cargo leptos end-to-end` starts the server and the tests together: wait
// until the server answers its readiness probe before any test runs.
export default async function globalSetup() {
  const base = process.env.BASE_URL ?? "http://127.0.0.1:3000";
  const deadline = Date.now() + 120_000;
  let last = "no answer";
  for (;;) {
    try {
      const r = await fetch(`${base}/readyz`);
      if (r.ok) return;
      last = `${r.status} ${await r.text()}`;
    } catch (e) {
      last = String(e);
    }
    if (Date.now() > deadline) throw new Error(`server at ${base} not ready: ${last}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
