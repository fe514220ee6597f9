// The built package (npm/dist, the same `connect` API) inside a dedicated Web Worker (a module
// worker: no `window`, no `document`), against the real Node socket.io test server on another
// origin: over WebSocket, over HTTP long-polling (fetch), and with the default transports
// (polling, then the upgrade to WebSocket). Each gets the server's `auth` event, an ack, a server
// ack request answered, an ack timeout (the driver's timer), and is seen by the server. Run by
// scripts/test-wasm.sh after scripts/build-wasm.sh, in Chromium and in Firefox:
//   node npm/test/browser/worker.mjs http://127.0.0.1:<s0 port> [--browser chromium|firefox]
import { browserArg, launch, print, serve } from "./harness.mjs";

const serverUrl = process.argv[2];
if (!serverUrl || serverUrl.startsWith("--")) {
  console.error("usage: node worker.mjs <socket.io server url> [--browser chromium|firefox]");
  process.exit(2);
}

const worker = `import { connect } from "/index.js";
const results = [];
const check = (name, ok, detail) => results.push({ name, ok: Boolean(ok), detail: String(detail ?? "") });
const url = ${JSON.stringify(serverUrl)};
const base = url.replace(/\\/$/, "");
const within = (ms, what, p) =>
  Promise.race([p, new Promise((_, reject) => setTimeout(() => reject(new Error("timed out waiting for " + what)), ms))]);
try {
  check("in a dedicated worker", typeof window === "undefined" && typeof document === "undefined" &&
    typeof WorkerGlobalScope === "function" && globalThis instanceof WorkerGlobalScope,
    typeof window + " " + typeof document + " " + String(globalThis));
  for (const transports of [["websocket"], ["polling"], undefined]) {
    const name = transports ? transports[0] : "default transports";
    const token = "worker " + name;
    const s = connect(url, { transports, reconnection: false, auth: { token }, forceNew: true });
    try {
      const auth = new Promise((r) => s.on("auth", (a) => r(a)));
      await within(10000, name + " connect", new Promise((r) => (s.connected ? r() : s.once("connect", r))));
      check(name + ": connected", s.connected && typeof s.id === "string", JSON.stringify(s.state));
      check(name + ": the server's event", (await within(10000, "auth", auth)).token === token, token);
      const echoed = await s.timeout(5000).emitWithAck("echo", { n: 1 }, new Uint8Array([7, 8]));
      check(name + ": ack", JSON.stringify(echoed[0]) === '{"n":1}' && echoed[1] instanceof Uint8Array && echoed[1].join() === "7,8",
        JSON.stringify(echoed));
      const answered = new Promise((r) => s.on("answered", (...a) => r(a)));
      s.on("ask", (n, ack) => ack("yes", n));
      s.emit("ask");
      const a = await within(10000, "answered", answered);
      check(name + ": server ack request answered", JSON.stringify(a) === '["yes",1]', JSON.stringify(a));
      let timedOut;
      try { await s.timeout(50).emitWithAck("nothing-acks"); } catch (e) { timedOut = e; }
      check(name + ": ack timeout (the timer)", timedOut?.message === "operation has timed out", timedOut?.message);
      if (!transports) {
        // The upgrade probe runs in the background: wait for the WebSocket to take over.
        const deadline = Date.now() + 10000;
        while (s.state.transport !== "websocket" && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        check(name + ": upgraded to websocket", s.state.transport === "websocket", JSON.stringify(s.state));
      } else {
        check(name + ": transport", s.state.transport === transports[0], JSON.stringify(s.state));
      }
      const sockets = await (await fetch(base + "/control/sockets")).json();
      check(name + ": seen by the server", sockets.some((x) => x.id === s.id), JSON.stringify(sockets));
    } finally {
      s.close();
    }
  }
} catch (e) {
  check("no exception", false, e?.stack ?? e);
}
postMessage(results);
`;

const page = `<!doctype html><script type="module">
const w = new Worker("/worker.js", { type: "module" });
w.onmessage = (e) => { window.__results = e.data; };
w.onerror = (e) => { window.__results = [{ name: "the worker ran", ok: false, detail: e.message ?? "error event" }]; };
</script>`;

const server = await serve({ "/": ["text/html", page], "/worker.js": ["text/javascript", worker] });
const browser = await launch(browserArg(process.argv));
let failed = 0;
let count = 0;
try {
  const { results, errors } = await browser.run(`${server.origin}/`, 60000);
  failed += print(results);
  count = results.length;
  for (const e of errors) {
    console.log(`FAIL page error: ${e}`);
    failed++;
    count++;
  }
  if (results.length < 10) {
    console.log("FAIL the worker reported too few results");
    failed++;
    count++;
  }
  console.log(`npm in a Web Worker (${browser.version}): ${count - failed} passed, ${failed} failed`);
} finally {
  await browser.close();
  await server.close();
}
process.exit(failed === 0 ? 0 : 1);
