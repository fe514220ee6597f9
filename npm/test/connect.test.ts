// How `connect()` shares connections between namespaces (socket.io-client's Manager rules), with
// the wasm module replaced by a recording double: which `WasmClient`s are created, which
// namespaces are opened over which, and what happens when the creating socket goes away early.
// The real thing over the network is tested in Chromium (test/browser/smoke.mjs,
// sdk-wasm/tests/browser.rs `namespaces_share_one_connection`).
import { beforeEach, describe, expect, it, vi } from "vitest";

const log = vi.hoisted(() => ({ created: [] as string[], opened: [] as string[] }));
const gate = vi.hoisted(() => {
  let release: () => void = () => {};
  const ready = new Promise<void>((r) => (release = r));
  return { ready, release: () => release() };
});

vi.mock("../src/wasm/tidings_wasm.js", () => {
  class WasmClient {
    constructor(
      readonly url: string,
      _options: unknown,
      readonly namespace: string = new URL(url).pathname,
      opened = false,
    ) {
      if (url.includes("bad")) throw new Error("tidings: invalid url");
      if (!opened) log.created.push(url);
    }
    of(namespace: string): WasmClient {
      log.opened.push(`${this.url} + ${namespace}`);
      return new WasmClient(this.url.replace(/\/[^/]*$/, namespace), undefined, namespace, true);
    }
    state = { status: "disconnected", reason: "io client disconnect" };
    recovered = false;
    connect(): void {}
    disconnect(): void {}
    close(): void {}
    free(): void {}
    onEvent(): void {}
    onState(): void {}
    onConnectError(): void {}
    onFeed(): void {}
  }
  return { default: () => gate.ready, WasmClient };
});

const { connect, init } = await import("../src/index.js");

describe("connect() and shared connections", () => {
  beforeEach(() => {
    log.created.length = 0;
    log.opened.length = 0;
  });

  it("fails the namespaces waiting on a creator that closed before the module loaded", async () => {
    const main = connect("http://early.test/");
    const chat = connect("http://early.test/chat");
    const errors: Error[] = [];
    chat.on("connect_error", (e) => errors.push(e));
    main.close();
    gate.release();
    await init();
    await Promise.resolve();
    expect(errors.map((e) => e.message)).toEqual([
      "tidings: the socket that opened this connection was closed before it was ready",
    ]);
    expect(log.opened).toEqual([]);
    // The failed connection is forgotten: the next socket creates a connection of its own.
    connect("http://early.test/chat");
    expect(log.created).toEqual(["http://early.test/chat"]);
  });

  it("opens other namespaces of the same server over the first socket's client", async () => {
    await init();
    const main = connect("http://a.test/");
    const admin = connect("http://a.test/admin", { auth: { token: "x" } });
    expect(admin.nsp).toBe("/admin");
    expect(log.created).toEqual(["http://a.test/"]);
    expect(log.opened).toEqual(["http://a.test/ + /admin"]);
    // Another server, forceNew, multiplex: false and a second socket for the same namespace get
    // connections of their own.
    connect("http://b.test/admin");
    connect("http://a.test/other", { forceNew: true });
    connect("http://a.test/more", { multiplex: false });
    connect("http://a.test/admin");
    expect(log.created).toEqual([
      "http://a.test/",
      "http://b.test/admin",
      "http://a.test/other",
      "http://a.test/more",
      "http://a.test/admin",
    ]);
    // Closing the first socket keeps the connection for the others; once all are closed the
    // next socket starts a new one.
    main.close();
    connect("http://a.test/late");
    expect(log.opened.at(-1)).toBe("http://a.test/admin + /late");
    admin.close();
  });

  it("a bad URL throws and leaves no connection behind", async () => {
    await init();
    expect(() => connect("http://bad.test/")).toThrow("invalid url");
    connect("http://fine.test/x");
    expect(log.opened).toEqual([]);
  });
});
