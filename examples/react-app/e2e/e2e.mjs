// End-to-end test of the example app: the built app (dist/) served by the example server, in
// headless Chromium. Run by scripts/test-examples-e2e.sh (which builds everything first):
//   SERVER_BIN=target/debug/tidings-example-server node examples/react-app/e2e/e2e.mjs
// It signs in, sees an internally emitted event, sends a chat message and sees its ack, then
// restarts the server and emits events before the app has reconnected: the app must show each
// of them exactly once. Screenshots go to e2e/artifacts/.
import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
const appDir = path.resolve(here, "..");
const artifacts = path.join(here, "artifacts");
const serverBin = process.env.SERVER_BIN ?? path.resolve(appDir, "../../target/debug/tidings-example-server");
const chromiumPath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const KEY = "e2e-internal-key";
const RECONNECT_DELAY_MS = 3000;
const T = 15_000;

fs.mkdirSync(artifacts, { recursive: true });
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "tidings-e2e-"));
const pidFile = process.env.E2E_PID_FILE;

let server;
let browser;
const started = Date.now();
const log = (msg) => console.log(`[e2e ${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s] ${msg}`);

async function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const port = Number(process.env.E2E_PORT) || (await freePort());
const base = `http://127.0.0.1:${port}`;

function startServer() {
  const out = fs.openSync(path.join(artifacts, "server.log"), "a");
  const child = spawn(
    serverBin,
    ["--bind", `127.0.0.1:${port}`, "--data-dir", dataDir, "--static-dir", path.join(appDir, "dist")],
    {
      env: { ...process.env, TIDINGS_INTERNAL_API_KEY: KEY, TIDINGS_JWT_SECRET: "e2e-jwt-secret", RUST_LOG: process.env.E2E_RUST_LOG ?? "info" },
      stdio: ["ignore", out, out],
    },
  );
  if (pidFile) fs.appendFileSync(pidFile, `${child.pid}\n`);
  child.exitCode_ = null;
  child.on("exit", (code, signal) => {
    child.exitCode_ = code ?? signal;
  });
  return child;
}

async function waitHealthy() {
  const deadline = Date.now() + T;
  for (;;) {
    try {
      const r = await fetch(`${base}/health`);
      if (r.ok) return;
    } catch {}
    if (server?.exitCode_ != null) throw new Error(`the server exited (${server.exitCode_}); see ${artifacts}/server.log`);
    if (Date.now() > deadline) throw new Error("the server did not answer /health");
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function stopServer(signal = "SIGTERM") {
  if (!server || server.exitCode_ != null) return;
  const exited = new Promise((r) => server.once("exit", r));
  server.kill(signal);
  await Promise.race([exited, new Promise((r) => setTimeout(r, 8000))]);
  if (server.exitCode_ == null) {
    server.kill("SIGKILL");
    await exited;
  }
}

async function emit(body) {
  const r = await fetch(`${base}/internal/emit`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-internal-api-key": KEY },
    body: JSON.stringify(body),
  });
  const v = await r.json();
  if (!r.ok) throw new Error(`emit failed: ${r.status} ${JSON.stringify(v)}`);
  return v.id;
}

const task = (id, title, event = "task.created", extra = {}) => ({
  to: { room: "tenant:acme" },
  event,
  data: { taskId: id, tenantId: "acme", userId: "carol", task: { id, title, ...extra } },
});

const checks = [];
function check(name, ok, detail = "") {
  checks.push({ name, ok });
  log(`${ok ? "ok  " : "FAIL"} ${name}${detail ? ` (${detail})` : ""}`);
  if (!ok) throw new Error(`check failed: ${name} ${detail}`);
}

async function cleanup() {
  await browser?.close().catch(() => {});
  await stopServer().catch(() => {});
  fs.rmSync(dataDir, { recursive: true, force: true });
}
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => {
    server?.kill("SIGKILL");
    process.exit(130);
  });
}

let page;
try {
  log(`server ${serverBin} on ${base}, data dir ${dataDir}`);
  server = startServer();
  await waitHealthy();

  browser = await chromium.launch({
    executablePath: chromiumPath,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  page.on("console", (m) => {
    if (m.type() === "error") pageErrors.push(`console: ${m.text()}`);
  });

  // 1. Sign in.
  await page.goto(`${base}/?reconnectionDelay=${RECONNECT_DELAY_MS}`);
  await page.getByTestId("login-alice").click();
  const badge = page.getByTestId("connection-badge");
  await badge.and(page.locator('[data-status="connected"]')).waitFor({ timeout: T });
  check("signed in and connected", true, `transport ${await badge.getAttribute("data-transport")}`);
  check("connected over WebSocket", (await badge.getAttribute("data-transport")) === "websocket");
  await page.locator('[data-testid="room-status"][data-status="joined"]').waitFor({ timeout: T });
  check("chat room joined (useRoom)", true);

  // 2. An event through the internal API shows up.
  const first = await emit(task("e2e-1", "First task from the internal API"));
  await page.locator(`[data-event-id="${first}"]`).waitFor({ timeout: T });
  check("internal emit appears in the live feed", true, first);
  const note = await emit({
    to: { users: ["alice"] },
    event: "notification.created",
    tenantId: "acme",
    data: { tenantId: "acme", userId: "alice", title: "Welcome", text: "hello alice" },
  });
  await page.locator(`[data-event-id="${note}"]`).waitFor({ timeout: T });
  check("user-targeted notification appears", true, note);
  // A catalogue event whose data does not fit the catalogue (no taskId, no task): the SDK's
  // validator keeps it from the listeners and reports it; the app shows it nowhere but the stat.
  const bad = await emit({ to: { room: "tenant:acme" }, event: "task.created", data: { title: 42 } });
  await page.locator('[data-testid="stat-invalid"]', { hasText: /^1$/ }).waitFor({ timeout: T });
  check("an event that does not fit the catalogue is reported, not shown", (await page.locator(`[data-event-id="${bad}"]`).count()) === 0, bad);

  // 3. Chat with an ack.
  const text = `hello from e2e ${Date.now()}`;
  await page.getByTestId("chat-input").fill(text);
  await page.getByTestId("chat-send").click();
  const bubble = page.getByTestId("chat-message").filter({ hasText: text });
  await bubble.and(page.locator('[data-status="delivered"]')).waitFor({ timeout: T });
  check("chat message delivered (ack)", (await bubble.count()) === 1, `${await bubble.count()} bubble(s)`);
  await page.screenshot({ path: path.join(artifacts, "01-connected.png"), fullPage: true });

  // 4. Restart the server; emit while the app is still waiting to reconnect.
  await stopServer("SIGTERM");
  log("server stopped (SIGTERM)");
  await page.locator('[data-testid="connection-badge"]:not([data-status="connected"])').waitFor({ timeout: T });
  log(`app sees: ${(await badge.innerText()).replace(/\s+/g, " ")}`);
  // The countdown is read in the first frames after the drop: it must count down from the delay,
  // never show more than it (a stale clock once made a 3 s delay read "3.6 s").
  const detail = await page.getByTestId("connection-detail").innerText();
  const secs = /in (\d+(?:\.\d+)?) s/.exec(detail);
  check(
    "reconnect countdown starts at most at the delay",
    secs !== null ? Number(secs[1]) <= RECONNECT_DELAY_MS / 1000 : /now/.test(detail),
    detail,
  );
  await page.screenshot({ path: path.join(artifacts, "02-reconnecting.png"), fullPage: true });
  server = startServer();
  await waitHealthy();
  log("server up again");
  const missed = [
    await emit(task("e2e-2", "Created while the app was away")),
    await emit({
      to: { users: ["alice"] },
      event: "notification.created",
      tenantId: "acme",
      data: { tenantId: "acme", userId: "alice", title: "Missed", text: "sent during the restart" },
    }),
    await emit(task("e2e-1", "First task from the internal API", "task.completed")),
  ];
  const statusAfterEmit = await badge.getAttribute("data-status");
  log(`emitted ${missed.join(", ")}; the app is ${statusAfterEmit}`);
  check("events were emitted before the app reconnected", statusAfterEmit !== "connected", statusAfterEmit);

  await badge.and(page.locator('[data-status="connected"]')).waitFor({ timeout: T });
  log("app reconnected");
  for (const id of missed) await page.locator(`[data-event-id="${id}"]`).waitFor({ timeout: T });
  // Let anything late (socket, client feed fallback, catch-up) arrive, then count.
  await page.waitForTimeout(2500);
  for (const id of missed) {
    const n = await page.locator(`[data-event-id="${id}"]`).count();
    check(`missed event shown exactly once`, n === 1, `${id}: ${n}`);
  }
  for (const id of [first, note]) {
    const n = await page.locator(`[data-event-id="${id}"]`).count();
    check(`earlier event still shown exactly once`, n === 1, `${id}: ${n}`);
  }
  const reconnect = page.getByTestId("last-reconnect");
  await reconnect.waitFor({ timeout: T });
  log(`last reconnect: ${await reconnect.innerText()} (recovered=${await reconnect.getAttribute("data-recovered")})`);
  check(
    "the completed task shows as done",
    (await page.locator('[data-testid="task"][data-task-id="e2e-1"]').getAttribute("data-status")) === "completed",
  );
  const sources = await Promise.all(missed.map((id) => page.locator(`[data-event-id="${id}"]`).getAttribute("data-source")));
  const duplicates = await page.getByTestId("stat-duplicates").innerText();
  log(`missed events came via: ${sources.join(", ")}; duplicates dropped: ${duplicates}`);
  // The session was not recovered (a restarted server), so the socket cannot replay them: the
  // SDK itself read them from the feed after the reconnect, once each (the app runs no catch-up).
  check("the SDK caught up from the feed", sources.every((s) => s === "feed"), sources.join(", "));
  check("the app saw no duplicate", duplicates === "0", duplicates);

  // 5. Still live after the restart: a new event and a chat message.
  const after = await emit(task("e2e-3", "After the restart"));
  await page.locator(`[data-event-id="${after}"]`).waitFor({ timeout: T });
  check("live events flow after the reconnect", true, after);
  const text2 = `after restart ${Date.now()}`;
  await page.getByTestId("chat-input").fill(text2);
  await page.getByTestId("chat-send").click();
  await page
    .getByTestId("chat-message")
    .filter({ hasText: text2 })
    .and(page.locator('[data-status="delivered"]'))
    .waitFor({ timeout: T });
  check("chat delivered after the reconnect", true);
  await page.screenshot({ path: path.join(artifacts, "03-after-restart.png"), fullPage: true });

  // 6. The app closed, events sent meanwhile, the app opened again: it starts from the cursor it
  // stored (`feed.since`), so it shows what it missed, once, and nothing from before.
  await page.goto("about:blank");
  const whileAway = [await emit(task("e2e-4", "While the app was closed")), await emit(task("e2e-5", "Also while closed"))];
  await page.goto(`${base}/?reconnectionDelay=${RECONNECT_DELAY_MS}`);
  for (const id of whileAway) await page.locator(`[data-event-id="${id}"]`).waitFor({ timeout: T });
  await page.waitForTimeout(500);
  const awayCounts = await Promise.all(whileAway.map((id) => page.locator(`[data-event-id="${id}"]`).count()));
  check("reopened: events sent while closed shown once, from the stored cursor", awayCounts.every((n) => n === 1), awayCounts.join(", "));
  check("reopened: nothing from before the cursor is replayed", (await page.locator(`[data-event-id="${after}"]`).count()) === 0);

  const relevant = pageErrors.filter((e) => !/WebSocket connection to .* failed|ERR_CONNECTION_REFUSED|Failed to load resource/.test(e));
  check("no page errors", relevant.length === 0, relevant.join(" | "));
  log(`PASS: ${checks.length} checks; screenshots in ${artifacts}`);
  await cleanup();
  process.exit(0);
} catch (e) {
  log(`FAILED: ${e?.stack ?? e}`);
  await page?.screenshot({ path: path.join(artifacts, "failure.png"), fullPage: true }).catch(() => {});
  await cleanup();
  process.exit(1);
}
