// Browser side of the Tidings benchmarks: events/s delivered to a JS callback in headless
// Chromium, by the `tidings` npm package (npm/dist, built by scripts/build-wasm.sh), by
// socket.io-client 4.8.4 (bench/node/node_modules, bundled here with esbuild, minified) and by a
// floor (a bare WebSocket + JSON.parse), all loaded in the same page and run in turn against the
// same benchmark server. Spawned by `tidings-bench` (bench/src/main.rs); prints one JSON object
// (the result) as its last stdout line.
//
//   node bench/browser/run.mjs SERVER_URL N REPEATS
//
// SERVER_URL is a `tidings-bench server raw|sioxide` (WebSocket only). Each run connects with
// auth {"mode":"throughput","n":N}; the server then sends N `task.created` events (~330 B JSON)
// and one `done`. A run is timed with performance.now() from just before connect() to the `done`
// event; the callback counts each event and reads two of its fields. One untimed warm-up run of
// each client (min(N, 2000) events) comes first, then REPEATS rounds of one run per client, the
// order rotated each round. CPU time per run: every Chromium process, and the renderer alone
// (DevTools SystemInfo.getProcessInfo).
//
// Chromium is driven over the DevTools protocol directly, not with Playwright (see launch()).
// Env: CHROMIUM (default /usr/bin/chromium); TIDINGS_DIST (default npm/dist);
// BENCH_BROWSER_PROFILE=1 profiles one more run of tidings and of socket.io-client with the
// DevTools sampling profiler and prints where the page's main thread spends its time (stderr);
// BENCH_BROWSER_PROFILE_OUT=DIR also writes the .cpuprofile files (open them in DevTools).
import http from "node:http";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { execFileSync, spawn } from "node:child_process";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import zlib from "node:zlib";

const [serverUrl, nArg, repArg] = process.argv.slice(2);
const n = Number(nArg);
const repeats = Math.max(1, Number(repArg ?? 1));
if (!serverUrl || !(n > 0)) {
  console.error("usage: node bench/browser/run.mjs SERVER_URL N [REPEATS]");
  process.exit(2);
}
const fail = (msg) => {
  process.stderr.write(`browser bench: ${msg}\n`);
  process.exit(1);
};

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
// TIDINGS_DIST: another build of the package (e.g. one whose .wasm keeps its name section, to profile).
const dist = path.resolve(process.env.TIDINGS_DIST ?? path.join(root, "npm/dist"));
const nodeDir = path.join(root, "bench/node");
// esbuild is a dev dependency of the npm package.
const requireNpm = createRequire(path.join(root, "npm/package.json"));
const esbuild = requireNpm("esbuild");
const chromiumPath = process.env.CHROMIUM ?? "/usr/bin/chromium";

for (const f of ["index.js", "wasm/tidings_wasm.js", "wasm/tidings_wasm_bg.wasm"]) {
  if (!fs.existsSync(path.join(dist, f))) fail(`npm/dist/${f} is missing; run bash scripts/build-wasm.sh`);
}
const sioPkg = JSON.parse(fs.readFileSync(path.join(nodeDir, "node_modules/socket.io-client/package.json"), "utf8"));

// socket.io-client as an application would ship it: an esbuild bundle of its ESM build, minified.
const sioBundle = esbuild.buildSync({
  stdin: { contents: 'export { io } from "socket.io-client";', resolveDir: nodeDir, loader: "js" },
  bundle: true,
  minify: true,
  format: "esm",
  target: "es2020",
  write: false,
  logLevel: "warning",
}).outputFiles[0].contents;

// gzip -9 sizes (the gzip tool, as scripts/build-wasm.sh prints them; zlib level 9 if it is missing).
const gzip9 = (buf) => {
  try {
    return execFileSync("gzip", ["-9", "-c", "-n"], { input: buf, maxBuffer: 64 << 20 }).length;
  } catch {
    return zlib.gzipSync(buf, { level: 9 }).length;
  }
};
const sizeOf = (buf) => ({ raw: buf.length, gzip: gzip9(buf) });
const tidingsFiles = {
  wasm: sizeOf(fs.readFileSync(path.join(dist, "wasm/tidings_wasm_bg.wasm"))),
  glue: sizeOf(fs.readFileSync(path.join(dist, "wasm/tidings_wasm.js"))),
  index: sizeOf(fs.readFileSync(path.join(dist, "index.js"))),
};
const sum = (parts, k) => Object.values(parts).reduce((a, p) => a + p[k], 0);
const bundles = {
  tidings: { ...tidingsFiles, raw: sum(tidingsFiles, "raw"), gzip: sum(tidingsFiles, "gzip") },
  "socket.io-client": sizeOf(Buffer.from(sioBundle)),
};

const page = `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><title>tidings browser bench</title>
<script>
addEventListener("error", (e) => { window.__error = String(e.message || e.error || "script error"); });
addEventListener("unhandledrejection", (e) => { window.__error = String(e.reason?.stack ?? e.reason); });
</script>
<script type="module" onerror="window.__error = 'a module failed to load'">
import { connect, init } from "/tidings/index.js";
import { io } from "/socket.io-client.js";
// Load and compile the WebAssembly module before any timing (an app does this once, at startup).
await init();
const clients = {
  tidings: (url, opts) => connect(url, opts),
  "socket.io-client": (url, opts) => io(url, opts),
  floor,
};
// The floor: a bare WebSocket that speaks just enough Engine.IO/Socket.IO for this stream and
// JSON.parses each event frame, which any client has to do at least.
function floor(url, opts) {
  const handlers = {};
  let open = true;
  const ws = new WebSocket(url.replace(/^http/, "ws") + "/socket.io/?EIO=4&transport=websocket");
  ws.onmessage = (m) => {
    const d = m.data;
    if (d.startsWith("42")) {
      const a = JSON.parse(d.slice(2));
      handlers[a[0]]?.(a[1]);
    } else if (d === "2") ws.send("3");
    else if (d[0] === "0") ws.send("40" + JSON.stringify(opts.auth));
  };
  ws.onerror = () => handlers.connect_error?.(new Error("websocket error"));
  ws.onclose = () => open && handlers.disconnect?.("transport close");
  return {
    on(name, cb) { handlers[name] = cb; },
    disconnect() { open = false; ws.close(); },
  };
}
window.bench = (kind, url, n) => new Promise((resolve, reject) => {
  let count = 0;
  let check = 0;
  let finished = false;
  const opts = { transports: ["websocket"], forceNew: true, reconnection: false, timeout: 60000, auth: { mode: "throughput", n } };
  const t0 = performance.now();
  const s = clients[kind](url, opts);
  const end = (err, result) => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    s.disconnect();
    if (s.close) s.close();
    err ? reject(new Error(kind + ": " + err)) : resolve(result);
  };
  const timer = setTimeout(() => end("no done event after 300 s (" + count + " events)"), 300000);
  s.on("task.created", (task) => {
    // Touch the payload like an application handler would.
    check += task.priority + task.title.length;
    count++;
  });
  s.on("done", (total) => {
    const ms = performance.now() - t0;
    if (count !== n || total !== n) end("done after " + count + " of " + n + " events (server sent " + total + ")");
    else end(null, { events: count, ms, check });
  });
  s.on("connect_error", (e) => end("connect_error " + (e && e.message)));
  s.on("disconnect", (reason) => end("disconnected (" + reason + ") after " + count + " events"));
});
window.__ready = true;
</script>`;

const types = { ".js": "text/javascript", ".wasm": "application/wasm" };
const server = http.createServer((req, res) => {
  const url = new URL(req.url, "http://x");
  if (url.pathname === "/") {
    res.writeHead(200, { "content-type": "text/html" }).end(page);
  } else if (url.pathname === "/socket.io-client.js") {
    res.writeHead(200, { "content-type": "text/javascript" }).end(sioBundle);
  } else if (url.pathname.startsWith("/tidings/")) {
    const file = path.join(dist, path.normalize(url.pathname.slice("/tidings".length)));
    if (!file.startsWith(dist + path.sep) || !fs.existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": types[path.extname(file)] ?? "application/octet-stream" });
    fs.createReadStream(file).pipe(res);
  } else {
    res.writeHead(404).end();
  }
});
await new Promise((r) => server.listen(0, "127.0.0.1", r));
const origin = `http://127.0.0.1:${server.address().port}`;

const chrome = await launch();
let result;
try {
  // CPU seconds of every Chromium process (browser, renderer, network service, GPU), by type.
  const cpu = async () => {
    const { processInfo } = await chrome.send("SystemInfo.getProcessInfo");
    const by = { total: 0 };
    for (const p of processInfo) {
      by[p.type] = (by[p.type] ?? 0) + p.cpuTime;
      by.total += p.cpuTime;
    }
    return by;
  };
  const { targetId } = await chrome.send("Target.createTarget", { url: origin });
  const { sessionId } = await chrome.send("Target.attachToTarget", { targetId, flatten: true });
  const evaluate = async (expression) => {
    const r = await chrome.send("Runtime.evaluate", { expression, awaitPromise: true, returnByValue: true }, sessionId);
    if (r.exceptionDetails) {
      const d = r.exceptionDetails;
      throw new Error(d.exception?.description ?? d.text ?? JSON.stringify(d));
    }
    return r.result.value;
  };
  const deadline = Date.now() + 30000;
  for (;;) {
    const state = await evaluate("window.__error ?? (window.__ready === true)");
    if (state === true) break;
    if (typeof state === "string") throw new Error(`page: ${state}`);
    if (Date.now() > deadline) throw new Error("page did not load in 30 s");
    await new Promise((r) => setTimeout(r, 50));
  }
  const bench = (kind, events) => evaluate(`window.bench(${JSON.stringify(kind)}, ${JSON.stringify(serverUrl)}, ${events})`);
  const one = async (kind, events) => {
    const c0 = await cpu();
    const r = await bench(kind, events);
    const c1 = await cpu();
    const d = (k) => (c1[k] ?? 0) - (c0[k] ?? 0);
    return {
      client: kind,
      events: r.events,
      wall_s: r.ms / 1000,
      events_per_s: r.events / (r.ms / 1000),
      cpu_s: d("total"),
      renderer_cpu_s: d("renderer"),
      check: r.check,
    };
  };
  const kinds = ["tidings", "socket.io-client", "floor"];
  for (const k of kinds) await one(k, Math.min(n, 2000)); // warm-up: JIT, connection setup paths
  const runs = [];
  for (let rep = 0; rep < repeats; rep++) {
    // Rotate the order, so no client always runs right after the same other one (and its garbage).
    for (const k of [...kinds.slice(rep % kinds.length), ...kinds.slice(0, rep % kinds.length)]) {
      const r = await one(k, n);
      process.stderr.write(`  browser ${k} #${rep}: ${Math.round(r.events_per_s)} events/s\n`);
      runs.push(r);
    }
  }
  if (process.env.BENCH_BROWSER_PROFILE === "1") {
    for (const k of kinds.slice(0, 2)) await profile(chrome, sessionId, bench, k, n);
  }
  const { product } = await chrome.send("Browser.getVersion");
  result = { events: n, repeats, runs, bundles, chromium: product, socket_io_client: sioPkg.version };
} catch (e) {
  fail(e instanceof Error ? e.message : String(e));
} finally {
  await chrome.close();
  server.close();
}
process.stdout.write(JSON.stringify(result) + "\n", () => process.exit(0));

/**
 * Starts headless Chromium with the DevTools protocol on a pipe (fd 3 in, fd 4 out, NUL-framed
 * JSON), as Playwright does, but without Playwright: Playwright enables the Network domain on
 * every page, and Chromium then reports every WebSocket frame to it, which costs more than the
 * clients being measured. Only Target, Runtime.evaluate, SystemInfo (and Profiler) are used here.
 */
async function launch() {
  const profileDir = fs.mkdtempSync(path.join(os.tmpdir(), "tidings-bench-chromium-"));
  const child = spawn(chromiumPath, [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-extensions", "--disable-default-apps", "--mute-audio", "--no-default-browser-check",
    "--remote-debugging-pipe", `--user-data-dir=${profileDir}`, "about:blank",
  ], { stdio: ["ignore", "ignore", "pipe", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d) => { stderr = (stderr + d).slice(-4000); });
  const [, , , toChrome, fromChrome] = child.stdio;
  const pending = new Map();
  let nextId = 1;
  let buf = "";
  let exited = false;
  fromChrome.on("data", (chunk) => {
    buf += chunk.toString("utf8");
    let i;
    while ((i = buf.indexOf("\0")) >= 0) {
      const msg = JSON.parse(buf.slice(0, i));
      buf = buf.slice(i + 1);
      const p = msg.id !== undefined && pending.get(msg.id);
      if (!p) continue; // events: none are subscribed to
      pending.delete(msg.id);
      if (msg.error) p.reject(new Error(`${p.method}: ${msg.error.message}`));
      else p.resolve(msg.result);
    }
  });
  const gone = (why) => {
    exited = true;
    for (const p of pending.values()) p.reject(new Error(`chromium ${why}: ${stderr}`));
    pending.clear();
  };
  child.on("exit", (code, signal) => gone(`exited (${code ?? signal})`));
  child.on("error", (e) => gone(`could not run ${chromiumPath}: ${e.message}`));
  // A write to a Chromium that has gone away: reported by the exit handler instead.
  toChrome.on("error", () => {});
  const send = (method, params = {}, sessionId) => new Promise((resolve, reject) => {
    if (exited) return reject(new Error(`chromium is gone: ${stderr}`));
    const id = nextId++;
    pending.set(id, { resolve, reject, method });
    toChrome.write(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }) + "\0");
  });
  const close = async () => {
    if (!exited) {
      const gone = new Promise((r) => child.once("exit", r));
      send("Browser.close").catch(() => {});
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await gone;
      clearTimeout(timer);
    }
    fs.rmSync(profileDir, { recursive: true, force: true });
  };
  return { send, close };
}

/** One more run of `kind` under the CDP sampling profiler; prints a self-time summary to stderr. */
async function profile(chrome, sessionId, bench, kind, events) {
  await chrome.send("Profiler.enable", {}, sessionId);
  await chrome.send("Profiler.setSamplingInterval", { interval: 100 }, sessionId);
  await chrome.send("Profiler.start", {}, sessionId);
  const r = await bench(kind, events);
  const { profile: p } = await chrome.send("Profiler.stop", {}, sessionId);
  await chrome.send("Profiler.disable", {}, sessionId);
  const byId = new Map(p.nodes.map((node) => [node.id, node]));
  const self = new Map();
  const groups = new Map();
  const add = (m, k, us) => m.set(k, (m.get(k) ?? 0) + us);
  let total = 0;
  p.samples.forEach((id, i) => {
    const f = byId.get(id).callFrame;
    const file = f.url ? f.url.replace(/^.*\//, "") : "";
    const name = f.functionName || "(anonymous)";
    const us = p.timeDeltas[i + 1] ?? 0;
    total += us;
    add(self, `${name} ${file}${f.url ? `:${f.lineNumber + 1}:${f.columnNumber + 1}` : ""}`, us);
    // Where the time goes: the browser's own work, the client's code, or a native built-in.
    let group;
    if (/^\(.*\)$/.test(name)) group = name; // (program): Chromium outside JS, (garbage collector), (idle)
    else if (file.endsWith(".wasm") || /^(wasm-|js-to-wasm)/.test(name)) group = "wasm (incl. js<->wasm stubs)";
    else if (file === "tidings_wasm.js") group = "tidings driver (JS)";
    else if (file === "index.js") group = "tidings index.js";
    else if (file === "socket.io-client.js") group = "socket.io-client (JS)";
    else if (!f.url) group = `built-in: ${name}`;
    else group = "page script";
    add(groups, group, us);
  });
  const ms = (us) => (us / 1000).toFixed(1).padStart(8);
  const pct = (us) => ((100 * us) / total).toFixed(1).padStart(5);
  const perEvent = (us) => (us / events).toFixed(2).padStart(6);
  process.stderr.write(`\nprofile ${kind}: ${events} events in ${r.ms.toFixed(0)} ms (page main thread, sampled ${(total / 1000).toFixed(0)} ms)\n`);
  process.stderr.write("  by kind:      ms      %   µs/event\n");
  for (const [k, us] of [...groups.entries()].sort((a, b) => b[1] - a[1]).slice(0, 15)) {
    process.stderr.write(`  ${ms(us)} ${pct(us)} % ${perEvent(us)}  ${k}\n`);
  }
  process.stderr.write("  top functions (self time):\n");
  for (const [k, us] of [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 20)) {
    process.stderr.write(`  ${ms(us)} ${pct(us)} % ${perEvent(us)}  ${k}\n`);
  }
  if (process.env.BENCH_BROWSER_PROFILE_OUT) {
    const out = path.join(process.env.BENCH_BROWSER_PROFILE_OUT, `${kind}.cpuprofile`);
    fs.writeFileSync(out, JSON.stringify(p));
    process.stderr.write(`  wrote ${out}\n`);
  }
}
