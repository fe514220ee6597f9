// Checks the BUILT package (npm/dist, from scripts/build-wasm.sh) the way a consumer sees it:
// by name, through the `exports` map of package.json (Node resolves a package's own name from
// inside it). Run by `npm run test:package` after publint and the consumer type check.

import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const entries = {
  tidings: ["connect", "io", "init"],
  "tidings/react": [
    "TidingsProvider",
    "useTidings",
    "useEvent",
    "useEmit",
    "useConnectionState",
    "useRoom",
    "createTidingsHooks",
    "useSnapshot",
  ],
  "tidings/snapshot": ["subscribeWithSnapshot"],
  "tidings/publisher": [
    "Publisher",
    "PublishError",
    "PublishRejectedError",
    "PublishGaveUpError",
    "PublisherClosedError",
    "PublishQueueFullError",
    "PublisherCloseTimeoutError",
  ],
};

for (const [specifier, names] of Object.entries(entries)) {
  const url = import.meta.resolve(specifier);
  const file = fileURLToPath(url);
  assert.ok(existsSync(file), `${specifier} resolves to ${file}, which does not exist: run scripts/build-wasm.sh first`);
  const types = file.replace(/\.js$/, ".d.ts");
  assert.ok(existsSync(types), `${specifier}: no type declarations next to it (${types})`);
  const module = await import(specifier);
  for (const name of names) {
    assert.equal(typeof module[name], "function", `${specifier} does not export a function ${name}`);
  }
  console.log(`ok ${specifier} -> ${file} (${names.length} exports checked)`);
}

// `tidings/publisher` is for Node and edge runtimes: it must load without the wasm, or anything else.
const publisherFile = fileURLToPath(import.meta.resolve("tidings/publisher"));
const publisherJs = readFileSync(publisherFile, "utf8");
assert.ok(!/(^|[^.\w$])import[\s({*]|\bfrom\s*["']|require\(/.test(publisherJs), `${publisherFile} imports something`);
console.log("ok tidings/publisher imports nothing");
