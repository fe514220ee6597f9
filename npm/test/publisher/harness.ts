// The reference server (examples/server, the binary `tidings-example-server`) as a child process,
// its feed read with an HS256 token signed here, and an HTTP fault proxy that injects 503s and
// loses answers. Used by e2e.test.ts.

import { type ChildProcess, spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const SECRET = "publisher-e2e-jwt-secret-0123456789abcdef";
export const KEY = "publisher-e2e-internal-api-key-0123456789";

const root = fileURLToPath(new URL("../../../", import.meta.url));

/**
 * The server binary: `TIDINGS_EXAMPLE_SERVER`, or `debug/tidings-example-server` in
 * `CARGO_TARGET_DIR` (default `target/` of the repository). Throws, saying how to build it, when
 * it is missing: the end-to-end tests must never skip silently.
 */
export function serverBinary(): string {
  const explicit = process.env["TIDINGS_EXAMPLE_SERVER"];
  const targetDir = process.env["CARGO_TARGET_DIR"] ?? "target";
  const bin = explicit ?? join(isAbsolute(targetDir) ? targetDir : resolve(root, targetDir), "debug", "tidings-example-server");
  if (!existsSync(bin)) {
    throw new Error(
      `the reference server binary ${bin} does not exist: build it with \`cargo build -p tidings-example-server\` ` +
        "from the repository root (same CARGO_TARGET_DIR), or set TIDINGS_EXAMPLE_SERVER to its path",
    );
  }
  return bin;
}

export function tempDir(name: string): string {
  return mkdtempSync(join(tmpdir(), `tidings-ts-pub-${name}-`));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** One run of the reference server on 127.0.0.1. */
export class ReferenceServer {
  private constructor(
    private readonly child: ChildProcess,
    /** `127.0.0.1:PORT`. */
    readonly addr: string,
    private readonly exited: Promise<void>,
  ) {}

  get origin(): string {
    return `http://${this.addr}`;
  }

  get port(): number {
    return Number(this.addr.split(":")[1]);
  }

  /** Starts the server on `port` (0: any free one) with its event log in `dataDir`. */
  static async start(dataDir: string, port = 0): Promise<ReferenceServer> {
    const args = ["--bind", `127.0.0.1:${port}`, "--data-dir", dataDir, "--jwt-secret", SECRET];
    args.push("--internal-api-key", KEY, "--no-dev-login");
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) {
      if (v !== undefined && !k.startsWith("TIDINGS_") && k !== "RUST_LOG") env[k] = v;
    }
    const child = spawn(serverBinary(), args, { env, stdio: ["ignore", "pipe", "pipe"] });
    live.add(child);
    const exited = new Promise<void>((done) => child.once("exit", () => done()));
    void exited.then(() => live.delete(child));
    let output = "";
    const addr = await new Promise<string>((ok, fail) => {
      const timer = setTimeout(() => fail(new Error(`the server did not say it was listening within 20 s:\n${output}`)), 20_000);
      const read = (chunk: Buffer): void => {
        // The log lines say `listening addr=127.0.0.1:PORT` (stdout or stderr, with or without colours).
        output += chunk.toString("utf8").replace(/\u001b\[[0-9;]*m/g, "");
        const m = /listening\b.*?\baddr=(127\.0\.0\.1:\d+)/.exec(output);
        if (m?.[1] !== undefined) {
          clearTimeout(timer);
          ok(m[1]);
        }
      };
      child.stdout?.on("data", read);
      child.stderr?.on("data", read);
      child.once("exit", (code) => {
        clearTimeout(timer);
        fail(new Error(`the server exited (${code}) before listening:\n${output}`));
      });
      child.once("error", (e) => {
        clearTimeout(timer);
        fail(e);
      });
    });
    return new ReferenceServer(child, addr, exited);
  }

  /** Stops it (SIGTERM: a graceful shutdown) and waits for the process to end. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill("SIGTERM");
    const killed = setTimeout(() => this.child.kill("SIGKILL"), 10_000);
    await this.exited;
    clearTimeout(killed);
  }
}

/** Servers still running: killed by `killAll` (afterEach), whatever a test did. */
const live = new Set<ChildProcess>();

export function killAll(): void {
  for (const child of live) child.kill("SIGKILL");
  live.clear();
}

/** An HS256 JWT, as the reference server checks them. */
export function signJwt(claims: { sub: string; tenantId: string; exp: number }, secret: string): string {
  const b64 = (v: object): string => Buffer.from(JSON.stringify(v)).toString("base64url");
  const unsigned = `${b64({ alg: "HS256", typ: "JWT" })}.${b64(claims)}`;
  return `${unsigned}.${createHmac("sha256", secret).update(unsigned).digest("base64url")}`;
}

/** An event of the feed: `data` is its envelope. */
export interface FeedEvent {
  id: string;
  event: string;
  offset: number;
  data: { id: string; type: string; data: unknown; metadata: { correlationId?: string } };
}

/** Every event of tenant `acme` that the user `reader` may see, from the start. */
export async function feed(origin: string, sub = "reader"): Promise<FeedEvent[]> {
  const token = signJwt({ sub, tenantId: "acme", exp: Math.floor(Date.now() / 1000) + 600 }, SECRET);
  const res = await fetch(`${origin}/api/polling/acme/events?since=0&limit=1000`, {
    headers: { authorization: `Bearer ${token}` },
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`the feed answered ${res.status}: ${text}`);
  return (JSON.parse(text) as { events: FeedEvent[] }).events;
}

/** What the fault proxy does to the next request. */
export type Fault =
  /** Answer 503 without telling the server. */
  | "unavailable"
  /** Let the server handle it, then close the connection without its answer. */
  | "lose-answer";

export const BATCH_PATH = "/internal/v1/emit/batch";

/**
 * An HTTP/1.1 proxy in front of `upstream` (`host:port`, changeable) that applies the faults of
 * `plan` to the next requests that reach the server (to `faultPath` only, when set), one request
 * per connection (it asks the server to close after answering). When the server is down, the
 * client's connection is closed without an answer. While `noBatch` is set it answers 404 to
 * batch requests (a server without the batch endpoint).
 */
export class FaultProxy {
  readonly plan: Fault[] = [];
  faultPath: string | undefined;
  noBatch = false;
  /** The path of every request received. */
  readonly requests: string[] = [];
  /** Requests passed to the server, and faults applied. */
  forwarded = 0;
  injected = 0;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly origin: string,
    public upstream: string,
  ) {}

  static async start(upstream: string): Promise<FaultProxy> {
    const server = createServer();
    await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
    const address = server.address();
    if (address === null || typeof address === "string") throw new Error("the proxy has no port");
    const proxy = new FaultProxy(server, `http://127.0.0.1:${address.port}`, upstream);
    server.on("connection", (client) => proxy.handle(client));
    return proxy;
  }

  private handle(client: Socket): void {
    this.sockets.add(client);
    client.on("close", () => this.sockets.delete(client));
    client.on("error", () => undefined);
    let buf = Buffer.alloc(0);
    let taken = false;
    client.on("data", (chunk: Buffer) => {
      if (taken) return;
      buf = Buffer.concat([buf, chunk]);
      const request = completeRequest(buf);
      if (request === undefined) return;
      taken = true;
      this.forward(client, request);
    });
  }

  /** Requests received so far: to the batch endpoint, and to the single one. */
  counts(): { batches: number; singles: number } {
    const batches = this.requests.filter((p) => p === BATCH_PATH).length;
    return { batches, singles: this.requests.length - batches };
  }

  private forward(client: Socket, request: Buffer): void {
    const path = request.subarray(0, request.indexOf("\r\n")).toString("latin1").split(" ")[1] ?? "";
    this.requests.push(path);
    if (this.noBatch && path === BATCH_PATH) {
      client.end("HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
      return;
    }
    const [host, port] = this.upstream.split(":");
    const server = connect(Number(port), host ?? "127.0.0.1");
    this.sockets.add(server);
    const answer: Buffer[] = [];
    let fault: Fault | undefined;
    server.on("connect", () => {
      // The server is up: the next fault of the plan applies.
      if (this.faultPath === undefined || this.faultPath === path) fault = this.plan.shift();
      if (fault === "unavailable") {
        this.injected += 1;
        server.destroy();
        this.sockets.delete(server);
        client.end("HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        return;
      }
      this.forwarded += 1;
      server.write(request);
    });
    server.on("data", (chunk: Buffer) => answer.push(chunk));
    server.on("error", () => client.destroy()); // server down: the client hears nothing
    server.on("end", () => {
      this.sockets.delete(server);
      if (fault === "lose-answer") {
        this.injected += 1;
        client.destroy(); // the server did it; the client never hears
        return;
      }
      client.end(Buffer.concat(answer));
    });
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((ok) => this.server.close(() => ok()));
  }
}

/** The request in `buf` with `connection: close`, once its head and body are all there. */
function completeRequest(buf: Buffer): Buffer | undefined {
  const headEnd = buf.indexOf("\r\n\r\n");
  if (headEnd < 0) return undefined;
  const head = buf.subarray(0, headEnd).toString("latin1");
  const length = Number(/^content-length:\s*(\d+)/im.exec(head)?.[1] ?? "0");
  if (buf.length < headEnd + 4 + length) return undefined;
  const lines = head.split("\r\n").filter((l) => !/^connection:/i.test(l));
  lines.push("connection: close");
  return Buffer.concat([Buffer.from(`${lines.join("\r\n")}\r\n\r\n`, "latin1"), buf.subarray(headEnd + 4, headEnd + 4 + length)]);
}
