// Browser bundle size of Tidings against other realtime client SDKs.
//
// Each package's client entry is bundled the same way
// (esbuild --bundle --minify --format=esm --platform=browser) from a one-line
// entry file, then compressed with gzip -9 (zlib level 9). Tidings is measured
// the way the project's size budget counts it: npm/dist/index.js +
// npm/dist/wasm/tidings_wasm.js + npm/dist/wasm/tidings_wasm_bg.wasm, each
// gzipped on its own, summed.
//
// Prints a markdown table (sorted by gzip size) and, last, one JSON line.
// Usage: bash scripts/size-compare.sh   (needs bash scripts/build-wasm.sh first)
import { build } from "esbuild";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, "..", "..");
const nodeModules = join(here, "node_modules");

// package name -> entry source (the client entry a browser app would import).
const PACKAGES = [
  ["phoenix", 'export { Socket } from "phoenix";'],
  ["socket.io-client", 'export { io } from "socket.io-client";'],
  ["@supabase/realtime-js", 'export { RealtimeClient } from "@supabase/realtime-js";'],
  ["pusher-js", 'export { default } from "pusher-js";'],
  ["centrifuge", 'export { Centrifuge } from "centrifuge";'],
  ["pubnub", 'export { default } from "pubnub";'],
  ["ably", 'export { Realtime } from "ably";'],
];

const TIDINGS_FILES = [
  "npm/dist/wasm/tidings_wasm_bg.wasm",
  "npm/dist/wasm/tidings_wasm.js",
  "npm/dist/index.js",
];

const gzip9 = (buf) => gzipSync(buf, { level: 9 }).length;

function fail(message) {
  console.error(`size-compare: ${message}`);
  process.exit(1);
}

function tidingsSize() {
  const missing = TIDINGS_FILES.filter((f) => !existsSync(join(repoRoot, f)));
  if (missing.length > 0) {
    fail(
      `missing ${missing.join(", ")}; build the browser package first: bash scripts/build-wasm.sh`,
    );
  }
  let raw = 0;
  let gz = 0;
  const bufs = TIDINGS_FILES.map((f) => readFileSync(join(repoRoot, f)));
  for (const buf of bufs) {
    raw += buf.length;
    gz += gzip9(buf);
  }
  // scripts/build-wasm.sh's budget gzips the two JS files as one stream (a few hundred bytes
  // less than gzipping them one by one); reported in the JSON line for reference.
  const budgetGzip = gzip9(bufs[0]) + gzip9(Buffer.concat(bufs.slice(1)));
  const version = JSON.parse(readFileSync(join(repoRoot, "npm/package.json"), "utf8")).version;
  return { name: "tidings", version, raw, gzip: gz, budgetGzip };
}

function installedVersion(name) {
  const pkgJson = join(nodeModules, name, "package.json");
  if (!existsSync(pkgJson)) {
    fail(`${name} is not installed in bench/size/node_modules; run: bash scripts/size-compare.sh`);
  }
  return JSON.parse(readFileSync(pkgJson, "utf8")).version;
}

async function bundleSize(dir, name, source, index) {
  const entry = join(dir, `entry-${index}.mjs`);
  writeFileSync(entry, source + "\n");
  let result;
  try {
    result = await build({
      entryPoints: [entry],
      bundle: true,
      minify: true,
      format: "esm",
      platform: "browser",
      write: false,
      logLevel: "silent",
      // The entry lives in a temp dir; resolve bare imports from bench/size.
      nodePaths: [nodeModules],
    });
  } catch (err) {
    const msgs = (err.errors ?? []).map((e) => `  ${e.text}`).join("\n");
    fail(`${name} did not bundle for the browser:\n${msgs || err.message}`);
  }
  for (const w of result.warnings) console.error(`size-compare: ${name}: warning: ${w.text}`);
  const code = result.outputFiles[0].contents;
  return {
    name,
    version: installedVersion(name),
    raw: code.length,
    gzip: gzip9(code),
  };
}

const tidings = tidingsSize();
const dir = mkdtempSync(join(tmpdir(), "tidings-size-"));
const rows = [tidings];
try {
  for (const [i, [name, source]] of PACKAGES.entries()) {
    rows.push(await bundleSize(dir, name, source, i));
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

rows.sort((a, b) => a.gzip - b.gzip || a.name.localeCompare(b.name));
const fmt = (n) => n.toLocaleString("en-US");
const ratio = (r) => (r.gzip / tidings.gzip).toFixed(2);

console.log("| Package | Version | Raw bytes | gzip -9 bytes | vs tidings |");
console.log("|---|---|---:|---:|---:|");
for (const r of rows) {
  const name = r.name === "tidings" ? "**tidings** (wasm + JS)" : r.name;
  console.log(`| ${name} | ${r.version} | ${fmt(r.raw)} | ${fmt(r.gzip)} | ${ratio(r)}x |`);
}
console.log(
  JSON.stringify({
    method: "esbuild --bundle --minify --format=esm --platform=browser; gzip -9",
    rows: rows.map((r) => ({
      name: r.name,
      version: r.version,
      raw: r.raw,
      gzip: r.gzip,
      ratio: Number(ratio(r)),
    })),
    tidings_budget_method_gzip: tidings.budgetGzip,
  }),
);
