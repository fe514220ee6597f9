// What the browser tests of the built package share: a static server for npm/dist (plus the
// test's own pages) on one origin, and a headless browser that opens a page and collects what it
// reports in `window.__results` (an array of {name, ok, detail}) and its uncaught errors.
//
// Browsers: "chromium" (Debian's /usr/bin/chromium through playwright-core) and "firefox"
// (Debian's firefox-esr, driven by a few WebDriver BiDi commands over a WebSocket: playwright-core
// 1.65's Firefox support wants either its own patched build, which cannot be downloaded here, or
// a BiDi command, `emulation.setMediaFeaturesOverride`, that Firefox ESR 153 does not have).
import { spawn } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const dist = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../dist");
const types = { ".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm", ".html": "text/html" };

/**
 * Serves `pages` (path -> [content type, body]) and every file of `root` (npm/dist by default)
 * on 127.0.0.1; resolves to { origin, close }.
 */
export async function serve(pages = {}, root = dist) {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, "http://x");
    const page = pages[url.pathname] ?? (url.pathname === "/favicon.ico" ? ["image/x-icon", ""] : undefined);
    if (page) {
      res.writeHead(200, { "content-type": page[0] }).end(page[1]);
      return;
    }
    const file = path.join(root, path.normalize(url.pathname));
    if (!file.startsWith(root) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": types[path.extname(file)] ?? "application/octet-stream" });
    fs.createReadStream(file).pipe(res);
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return {
    origin: `http://127.0.0.1:${server.address().port}`,
    close: () => new Promise((r) => server.close(r)),
  };
}

/**
 * Launches `name` headless. The result opens pages: `run(url, timeoutMs)` resolves to
 * { results, errors, version } once the page has set `window.__results`.
 */
export async function launch(name) {
  if (name === "chromium") return launchChromium();
  if (name === "firefox") return launchFirefox();
  throw new Error(`unknown browser ${name}`);
}

async function launchChromium() {
  const { chromium } = await import("playwright-core");
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  return {
    name: "chromium",
    version: browser.version(),
    async run(url, timeout = 30000) {
      const tab = await browser.newPage();
      const errors = [];
      tab.on("pageerror", (e) => errors.push(e.message));
      tab.on("console", (m) => console.log(`page: ${m.text()}`));
      try {
        await tab.goto(url);
        await tab.waitForFunction(() => window.__results !== undefined, null, { timeout });
        return { results: await tab.evaluate(() => window.__results), errors };
      } finally {
        await tab.close();
      }
    },
    close: () => browser.close(),
  };
}

/** Preferences that keep a test Firefox quiet and offline (no updates, telemetry, first-run pages). */
const FIREFOX_PREFS = {
  "app.update.disabledForTesting": true,
  "browser.shell.checkDefaultBrowser": false,
  "browser.startup.homepage_override.mstone": "ignore",
  "browser.aboutwelcome.enabled": false,
  "datareporting.policy.dataSubmissionEnabled": false,
  "toolkit.telemetry.reportingpolicy.firstRun": false,
  "network.captive-portal-service.enabled": false,
  "network.connectivity-service.enabled": false,
  "services.settings.server": "data:,",
  "extensions.update.enabled": false,
  "remote.active-protocols": 1,
};

async function launchFirefox() {
  if (typeof WebSocket !== "function") {
    throw new Error("driving Firefox needs a global WebSocket (node --experimental-websocket on Node 20)");
  }
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "tidings-firefox-"));
  fs.writeFileSync(path.join(profile, "user.js"),
    Object.entries(FIREFOX_PREFS).map(([k, v]) => `user_pref(${JSON.stringify(k)}, ${JSON.stringify(v)});\n`).join(""));
  const child = spawn("firefox-esr", ["--headless", "--no-remote", "--profile", profile, "--remote-debugging-port=0", "about:blank"],
    { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, MOZ_CRASHREPORTER_DISABLE: "1" } });
  try {
    return await firefoxSession(child, profile);
  } catch (e) {
    child.kill("SIGKILL");
    fs.rmSync(profile, { recursive: true, force: true });
    throw e;
  }
}

async function firefoxSession(child, profile) {
  let log = "";
  const endpoint = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`firefox-esr did not start BiDi:\n${log}`)), 30000);
    child.stderr.on("data", (d) => {
      log += d;
      const m = /WebDriver BiDi listening on (ws:\/\/\S+)/.exec(log);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.once("exit", (code) => reject(new Error(`firefox-esr exited (${code}):\n${log}`)));
  });
  const ws = new WebSocket(`${endpoint}/session`);
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = () => reject(new Error(`no BiDi session at ${endpoint}`));
  });
  let next = 0;
  const waiting = new Map();
  const listeners = [];
  ws.onmessage = (m) => {
    const msg = JSON.parse(m.data);
    if (msg.id !== undefined) {
      const w = waiting.get(msg.id);
      waiting.delete(msg.id);
      if (msg.type === "error") w?.reject(new Error(`${msg.error}: ${msg.message}`));
      else w?.resolve(msg.result);
    } else {
      for (const l of listeners) l(msg);
    }
  };
  const send = (method, params = {}) =>
    new Promise((resolve, reject) => {
      const id = ++next;
      waiting.set(id, { resolve, reject });
      ws.send(JSON.stringify({ id, method, params }));
    });
  const session = await send("session.new", { capabilities: {} });
  await send("session.subscribe", { events: ["log.entryAdded"] });
  return {
    name: "firefox",
    version: `${session.capabilities.browserName} ${session.capabilities.browserVersion}`,
    async run(url, timeout = 30000) {
      const { context } = await send("browsingContext.create", { type: "tab" });
      const errors = [];
      const onLog = (msg) => {
        if (msg.method !== "log.entryAdded" || msg.params.source?.context !== context) return;
        if (msg.params.type === "javascript") errors.push(msg.params.text);
        else console.log(`page: ${msg.params.text}`);
      };
      listeners.push(onLog);
      try {
        await send("browsingContext.navigate", { context, url, wait: "complete" });
        const deadline = Date.now() + timeout;
        for (;;) {
          const r = await send("script.evaluate", {
            expression: "window.__results === undefined ? null : JSON.stringify(window.__results)",
            target: { context },
            awaitPromise: false,
          });
          if (r.type === "exception") throw new Error(`evaluate: ${r.exceptionDetails.text}`);
          if (r.result.type === "string") return { results: JSON.parse(r.result.value), errors };
          if (Date.now() > deadline) throw new Error(`${url}: no results after ${timeout} ms`);
          await new Promise((r) => setTimeout(r, 100));
        }
      } finally {
        listeners.splice(listeners.indexOf(onLog), 1);
        await send("browsingContext.close", { context }).catch(() => {});
      }
    },
    async close() {
      await send("browser.close").catch(() => {});
      ws.close();
      if (child.exitCode === null) {
        await new Promise((r) => {
          const timer = setTimeout(() => child.kill("SIGKILL"), 10000);
          child.once("exit", () => {
            clearTimeout(timer);
            r();
          });
        });
      }
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Prints each result; returns the number of failures. */
export function print(results) {
  let failed = 0;
  for (const r of results) {
    console.log(`${r.ok ? "ok  " : "FAIL"} ${r.name}${r.ok ? "" : `: ${r.detail}`}`);
    if (!r.ok) failed++;
  }
  return failed;
}

/** The browser named by `--browser NAME` in `argv` (chromium by default). */
export function browserArg(argv) {
  const i = argv.indexOf("--browser");
  return i >= 0 ? argv[i + 1] : "chromium";
}
