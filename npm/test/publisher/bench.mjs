// Times `tidings/publisher` publishing a backlog: EVENTS events queued fire-and-forget, then
// `flush`, to a server's internal API (docs/BENCHMARKS.md, "Publishing"; driven by
// scripts/publish-bench.sh). Not a test: run it with Node from npm/ (it bundles src/publisher.ts
// with esbuild first).
//
//   TIDINGS_API_KEY=... node test/publisher/bench.mjs URL EVENTS BATCH
//
// Prints one JSON line: {"publisher":"ts","events","batch","ms","eventsPerSec","published","failed","batches"}.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { build } from "esbuild";

const [url, eventsArg, batchArg] = process.argv.slice(2);
const key = process.env.TIDINGS_API_KEY;
if (url === undefined || eventsArg === undefined || batchArg === undefined || !key) {
  console.error("usage: TIDINGS_API_KEY=... node test/publisher/bench.mjs URL EVENTS BATCH");
  process.exit(2);
}
const events = Number(eventsArg);
const batchMax = Number(batchArg);

const dir = mkdtempSync(join(tmpdir(), "tidings-publish-bench-"));
try {
  const outfile = join(dir, "publisher.mjs");
  const source = new URL("../../src/publisher.ts", import.meta.url).pathname;
  await build({ entryPoints: [source], bundle: true, format: "esm", platform: "node", outfile, logLevel: "error" });
  const { Publisher } = await import(pathToFileURL(outfile).href);

  const publisher = new Publisher({ url, apiKey: key, batchMax, queue: Math.max(1, events), maxAttempts: 5 });
  const title = "Ship the publisher's batching";
  const started = performance.now();
  for (let seq = 0; seq < events; seq++) {
    const data = { taskId: `t${seq}`, tenantId: "bench", task: { id: `t${seq}`, title } };
    void publisher.publish({ room: "tenant:bench" }, "task.created", data); // fire and forget
  }
  await publisher.flush();
  const ms = performance.now() - started;
  const m = publisher.metrics();
  const line = {
    publisher: "ts",
    events,
    batch: batchMax,
    ms: Math.round(ms),
    eventsPerSec: Math.round(events / (ms / 1000)),
    published: m.published,
    failed: m.failed,
    batches: m.batches,
  };
  console.log(JSON.stringify(line));
  await publisher.close({ timeoutMs: 5_000 });
} finally {
  rmSync(dir, { recursive: true, force: true });
}
