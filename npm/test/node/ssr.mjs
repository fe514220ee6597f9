// Server rendering: `tidings` and `tidings/react` (the built package, by name) imported on Node
// and <TidingsProvider url> rendered with react-dom/server's renderToString touch no browser
// global and open no connection; the same markup, hydrated in Chromium, then connects.
//
//   1. The browser globals (window, self, document, location, navigator, WebSocket, fetch,
//      XMLHttpRequest, EventSource, localStorage, sessionStorage, addEventListener) are replaced
//      by getters that record the touch and throw, before anything is imported.
//   2. `tidings/react` alone is imported and the app rendered twice (two requests); then
//      `tidings` (its "node" condition loads the WebAssembly module) and twice again.
//   3. The app's URL is a TCP proxy in front of the test server that counts connections: none
//      during the renders. No browser global was touched, no timer or handle is left behind, and
//      the server has no socket with the app's token.
//   4. The globals are restored; the app is bundled for the browser (esbuild: React, dist/react.js,
//      dist/index.js) and served with the server's markup; Chromium hydrates it without a
//      mismatch, and on mount the provider connects (through the proxy): the `auth` event, an
//      ack, and the server lists the socket.
// Run by scripts/test-wasm.sh after the package is built. Usage: node ssr.mjs URL
import assert from "node:assert/strict";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

const [serverUrl] = process.argv.slice(2);
assert.ok(serverUrl, "usage: ssr.mjs URL");
const here = path.dirname(fileURLToPath(import.meta.url));

// 1. Browser globals: recorded and refused.
const BROWSER_GLOBALS = ["window", "self", "document", "location", "navigator", "WebSocket", "fetch", "XMLHttpRequest",
  "EventSource", "localStorage", "sessionStorage", "addEventListener"];
const saved = new Map();
const touched = [];
for (const name of BROWSER_GLOBALS) {
  saved.set(name, Object.getOwnPropertyDescriptor(globalThis, name));
  Object.defineProperty(globalThis, name, {
    configurable: true,
    get() {
      touched.push(name);
      throw new Error(`the server render touched ${name}`);
    },
  });
}
const restoreGlobals = () => {
  for (const [name, desc] of saved) {
    if (desc) Object.defineProperty(globalThis, name, desc);
    else delete globalThis[name];
  }
};

// The proxy the app connects through: every TCP connection to the app's URL is counted.
const target = new URL(serverUrl);
let connections = 0;
const proxy = net.createServer((client) => {
  connections++;
  const upstream = net.connect(Number(target.port), target.hostname);
  client.pipe(upstream).pipe(client);
  client.on("error", () => upstream.destroy());
  upstream.on("error", () => client.destroy());
});
await new Promise((r) => proxy.listen(0, "127.0.0.1", r));
const appUrl = `http://127.0.0.1:${proxy.address().port}/`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// Timers, sockets, DNS lookups, ...: what the renders may have started (stdio pipes and the
// proxy's listener are the test's own).
const started = () =>
  process.getActiveResourcesInfo().filter((r) => !["PipeWrap", "TTYWrap", "CloseReq", "FSReqCallback", "TCPServerWrap"].includes(r));

let passed = 0;
const ok = (what) => {
  passed++;
  console.log(`ok   ${what}`);
};

// 2. Server renders.
const { createElement } = await import("react");
const { renderToString } = await import("react-dom/server");
const { App } = await import("./ssr-app.mjs");
const render = () => renderToString(createElement(App, { url: appUrl }));
const SSR_MARKUP = '<p id="status">disconnected|||</p>';
for (const request of [1, 2]) assert.equal(render(), SSR_MARKUP, `render ${request} with tidings/react alone`);
assert.deepEqual(touched, [], "importing tidings/react and rendering touched no browser global");
ok("tidings/react alone: imported and rendered twice, no browser global touched");
await import("tidings");
assert.deepEqual(touched, [], "importing tidings (the node condition, the module loaded) touched no browser global");
let html = "";
for (const request of [3, 4]) {
  html = render();
  assert.equal(html, SSR_MARKUP, `render ${request} with the module loaded`);
}
assert.deepEqual(touched, [], "rendering with the module loaded touched no browser global");
ok("tidings + tidings/react: imported (module loaded) and rendered twice, no browser global touched");

// 3. Nothing started.
await sleep(300);
assert.equal(connections, 0, "a server render opened a connection");
assert.deepEqual(started(), [], "a server render left a timer, handle or request behind");
ok("the renders opened no connection and left no timer or handle behind");
restoreGlobals();
const sockets = async () => (await fetch(new URL("/control/sockets", serverUrl))).json();
assert.ok(!(await sockets()).some((s) => s.auth?.token === "ssr"), "the server has a socket of the render");
ok("the server saw no socket of the renders");

// 4. Hydration in Chromium.
const { build } = await import("esbuild");
const { launch, print, serve, dist } = await import("../browser/harness.mjs");
const bundle = await build({
  stdin: {
    contents: `
      import { createElement } from "react";
      import { hydrateRoot } from "react-dom/client";
      import { App } from "./ssr-app.mjs";
      const results = [];
      const check = (name, ok, detail) => results.push({ name, ok: Boolean(ok), detail: String(detail ?? "") });
      const text = () => document.getElementById("status").textContent;
      check("the page starts with the server's markup", text() === "disconnected|||", text());
      const errors = [];
      const seen = [];
      new MutationObserver(() => seen.push(text())).observe(document.getElementById("root"), { subtree: true, characterData: true, childList: true });
      hydrateRoot(document.getElementById("root"), createElement(App, { url: ${JSON.stringify(appUrl)} }), {
        onRecoverableError: (e) => errors.push(String(e?.message ?? e)),
      });
      const deadline = Date.now() + 20000;
      while (!/^connected\\|ssr\\|hydrated\\|./.test(text()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      check("hydrated without a mismatch", errors.length === 0, errors.join("; "));
      check("connected on mount: the auth event and an ack", /^connected\\|ssr\\|hydrated\\|./.test(text()), text());
      check("connecting before connected", seen.some((t) => t.startsWith("connecting|")), JSON.stringify(seen));
      const id = text().split("|")[3];
      const listed = await (await fetch(${JSON.stringify(new URL("/control/sockets", serverUrl).href)})).json();
      check("the server lists the socket", listed.some((s) => s.id === id && s.auth?.token === "ssr"), JSON.stringify(listed));
      window.__results = results;
    `,
    resolveDir: here,
    loader: "js",
  },
  bundle: true,
  write: false,
  format: "esm",
  platform: "browser",
  target: "es2022",
  define: { "process.env.NODE_ENV": '"production"' },
  logLevel: "warning",
});
const page = `<!doctype html><div id="root">${html}</div><script type="module" src="/app.js"></script>`;
const server = await serve({
  "/": ["text/html", page],
  "/app.js": ["text/javascript", bundle.outputFiles[0].text],
  // The glue finds the .wasm next to the script that bundled it.
  "/tidings_wasm_bg.wasm": ["application/wasm", fs.readFileSync(path.join(dist, "wasm/tidings_wasm_bg.wasm"))],
});
const browser = await launch("chromium");
let failed = 0;
try {
  const { results, errors } = await browser.run(`${server.origin}/`);
  failed += print(results);
  passed += results.length - failed;
  for (const e of errors) {
    console.log(`FAIL page error: ${e}`);
    failed++;
  }
  assert.ok(connections > 0, "the client connected through the app's URL");
  ok(`the hydrated client connected through the app's URL (TCP connections through it: ${connections})`);
} finally {
  await browser.close();
  await server.close();
  proxy.close();
}
console.log(`server render then hydration: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
