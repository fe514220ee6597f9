// Browser smoke test of the built npm package (npm/dist): loads dist/index.js in a headless
// browser from a static server on one origin and talks to the Node socket.io test server on
// another. Run by scripts/test-wasm.sh after scripts/build-wasm.sh, in Chromium and in Firefox:
//   node npm/test/browser/smoke.mjs http://127.0.0.1:<s0 port> [--browser chromium|firefox]
import { browserArg, launch, print, serve } from "./harness.mjs";

const serverUrl = process.argv[2];
if (!serverUrl || serverUrl.startsWith("--")) {
  console.error("usage: node smoke.mjs <socket.io server url> [--browser chromium|firefox]");
  process.exit(2);
}
/** The exception a listener throws on purpose; it must surface as a page error, once. */
const THROWN = "smoke: thrown by a listener on purpose";

const page = `<!doctype html><script>
// The critical path: how the .wasm is compiled (streamed while it downloads, or not).
window.__wasm = { streaming: 0, buffered: 0 };
const streaming = WebAssembly.instantiateStreaming, buffered = WebAssembly.instantiate;
WebAssembly.instantiateStreaming = (...a) => (window.__wasm.streaming++, streaming(...a));
WebAssembly.instantiate = (...a) => (window.__wasm.buffered++, buffered(...a));
</script><script type="module">
import { connect, init } from "/index.js";
const results = [];
const check = (name, ok, detail) => results.push({ name, ok: Boolean(ok), detail: String(detail ?? "") });
try {
  // Before the module is loaded: connect() returns at once, commands are queued.
  const early = connect(${JSON.stringify(serverUrl)}, { auth: { token: "early" } });
  check("connect() returns before the .wasm is compiled", window.__wasm.streaming + window.__wasm.buffered === 0 && !early.connected,
    JSON.stringify(window.__wasm));
  const greeted = new Promise((r) => early.on("auth", (a) => r(a)));
  const acked = early.emitWithAck("echo", "queued");
  check("queued emitWithAck", (await acked) === "queued", await acked);
  check("auth event", (await greeted).token === "early", JSON.stringify(await greeted));
  check("connected", early.connected && typeof early.id === "string", early.id);
  // Served as application/wasm, the module is compiled while it downloads, once.
  check("the .wasm is compiled streaming", window.__wasm.streaming === 1 && window.__wasm.buffered === 0, JSON.stringify(window.__wasm));
  early.close();

  await init();
  let bad;
  try { connect(${JSON.stringify(serverUrl)}, { reconnectionDelay: -5 }); } catch (e) { bad = e; }
  check("bad option throws Error", bad instanceof Error, bad?.message);

  const s = connect(${JSON.stringify(serverUrl)});
  const states = [];
  s.on("state", (st) => states.push(st.status));
  await new Promise((r) => s.once("connect", r));
  check("connect event", s.connected, s.state.status);
  const echoed = new Promise((r) => s.on("echo", (...a) => r(a)));
  s.emit("echo", 1, { two: [2] });
  check("event round trip", JSON.stringify(await echoed) === '[1,{"two":[2]}]', JSON.stringify(await echoed));
  const cb = await new Promise((r) => s.emit("echo", "x", "y", (...a) => r(a)));
  check("ack callback", JSON.stringify(cb) === '["x","y"]', JSON.stringify(cb));
  const bin = await s.emitWithAck("echo", new Uint8Array([1, 2, 3]));
  check("binary ack", bin instanceof Uint8Array && bin.join() === "1,2,3", bin);
  const answered = new Promise((r) => s.on("answered", (...a) => r(a)));
  s.on("ask", (n, ack) => ack("yes", n));
  s.emit("ask");
  check("server ack request", JSON.stringify(await answered) === '["yes",1]', JSON.stringify(await answered));
  let anyName;
  s.onAny((name) => { anyName = name; });
  await s.emitWithAck("hi");
  check("onAny", anyName === "hi", anyName);
  let timeoutErr;
  try { await s.timeout(50).emitWithAck("nothing-acks"); } catch (e) { timeoutErr = e; }
  check("timeout rejects", timeoutErr?.message === "operation has timed out", timeoutErr?.message);
  const joined = await s.join("r1");
  check("join", joined?.ok === true, JSON.stringify(joined));
  // Another namespace of the same server rides the same connection (socket.io-client's multiplex);
  // forceNew gets a connection of its own.
  const base = ${JSON.stringify(serverUrl.replace(/\/$/, ""))};
  const custom = connect(base + "/custom", { auth: { token: "c" } });
  const customAuth = await new Promise((r) => custom.on("auth", (a) => r(a)));
  check("namespace auth", custom.nsp === "/custom" && customAuth.token === "c", JSON.stringify(customAuth));
  const own = connect(base + "/custom", { forceNew: true });
  await new Promise((r) => (own.connected ? r() : own.once("connect", r)));
  const sockets = await (await fetch(base + "/control/sockets")).json();
  const engine = (nsp, id) => sockets.find((x) => x.nsp === nsp && x.id === id)?.engineId;
  check("multiplexed", engine("/", s.id) !== undefined && engine("/", s.id) === engine("/custom", custom.id), JSON.stringify(sockets));
  check("forceNew", engine("/custom", own.id) !== undefined && engine("/custom", own.id) !== engine("/", s.id), JSON.stringify(sockets));
  own.close();
  custom.close();
  check("closing a namespace keeps the others", s.connected && (await s.emitWithAck("echo", "on")) === "on", s.state.status);
  // A listener that throws (on the first of five events) keeps neither the other listeners nor
  // the later events from running; its exception is reported as uncaught (checked below).
  const ticks = [];
  const anyTicks = [];
  s.on("tick", (t) => { if (t.i === 0) throw new Error(${JSON.stringify(THROWN)}); });
  s.on("tick", (t) => ticks.push(t.i));
  s.onAny((name, t) => { if (name === "tick") anyTicks.push(t.i); });
  const lastTick = new Promise((r) => s.on("tick", (t) => t.i === 4 && r()));
  await fetch(base + "/control/burst?event=tick&count=5", { method: "POST" });
  await lastTick;
  check("a throwing listener loses no event", ticks.join() === "0,1,2,3,4" && anyTicks.join() === "0,1,2,3,4",
    JSON.stringify({ ticks, anyTicks }));
  // The page's origin is not the server's (another port): long-polling requests carry the
  // server's cookie only with withCredentials; extraHeaders go with them (the server's CORS
  // allows both). debug logs the protocol (the token redacted).
  await fetch(base + "/control/set-cookie", { method: "POST", credentials: "include" });
  const logged = [];
  const withCookie = connect(base, { forceNew: true, transports: ["polling"], withCredentials: true,
    extraHeaders: { "x-tidings-test": "extra" }, auth: { token: "t0ken-in-the-log?" }, debug: (l) => logged.push(l) });
  const h1 = await withCookie.timeout(5000).emitWithAck("headers");
  check("withCredentials sends the cookie", (h1.cookie ?? "").includes("tidings_test=1"), JSON.stringify(h1));
  check("extraHeaders on long-polling requests", h1["x-tidings-test"] === "extra", JSON.stringify(h1));
  withCookie.close();
  check("debug logs the protocol", logged.some((l) => l.includes('"headers"')) && logged.some((l) => l.includes("40{[redacted]}")),
    logged.slice(0, 8).join(" | "));
  const noCookie = connect(base, { forceNew: true, transports: ["polling"] });
  const h2 = await noCookie.timeout(5000).emitWithAck("headers");
  check("no cookie without withCredentials", !(h2.cookie ?? "").includes("tidings_test"), JSON.stringify(h2));
  noCookie.close();
  const disconnected = new Promise((r) => s.once("disconnect", r));
  s.disconnect();
  check("disconnect reason", (await disconnected) === "io client disconnect", await disconnected);
  s.close();
  let closedErr;
  try { s.connect(); } catch (e) { closedErr = e; }
  check("closed socket throws", closedErr instanceof Error, closedErr?.message);
} catch (e) {
  check("no exception", false, e?.stack ?? e);
}
window.__results = results;
</script>`;

const server = await serve({ "/": ["text/html", page] });
const browser = await launch(browserArg(process.argv));
let failed = 0;
try {
  const { results, errors } = await browser.run(`${server.origin}/`);
  failed += print(results);
  const thrown = errors.filter((e) => e.includes(THROWN));
  console.log(`${thrown.length === 1 ? "ok  " : "FAIL"} the throwing listener's exception was reported as uncaught (${thrown.length} times)`);
  if (thrown.length !== 1) failed++;
  for (const e of errors.filter((e) => !e.includes(THROWN))) {
    console.log(`FAIL page error: ${e}`);
    failed++;
  }
  console.log(`npm browser smoke (${browser.version}): ${results.length + 1 - failed} passed, ${failed} failed`);
} finally {
  await browser.close();
  await server.close();
}
process.exit(failed === 0 ? 0 : 1);
