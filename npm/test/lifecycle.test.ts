// The socket's life around its wasm client, with the module replaced by a recording double whose
// loading the test releases (or fails): commands queue before the module is ready and run in
// order after; a closed socket refuses them; a socket whose options or module were unusable
// reports one connect_error and refuses them; a namespace riding a shared connection stays idle
// until its connect(). Each test imports a fresh src/index.ts (the module is loaded once per import).
import { beforeEach, describe, expect, it, vi } from "vitest";
import type { ConnectError, ConnectionState } from "../src/types.js";

const log = vi.hoisted(() => ({ calls: [] as string[], loads: 0 }));
const gate = vi.hoisted(() => ({
  ready: Promise.resolve() as Promise<void>,
  release: () => {},
  fail: (_e: Error) => {},
}));

vi.mock("../src/wasm/tidings_wasm.js", () => {
  class WasmClient {
    state = { status: "disconnected", reason: "io client disconnect" };
    recovered = false;
    constructor(
      readonly url: string,
      _options: unknown,
      readonly namespace: string = new URL(url).pathname,
    ) {
      if (url.includes("bad")) throw new Error("invalid url");
      log.calls.push(`new ${url}`);
    }
    of(namespace: string): WasmClient {
      log.calls.push(`of ${namespace}`);
      return new WasmClient(new URL(namespace, this.url).href, undefined, namespace);
    }
    connect(): void {
      log.calls.push(`connect ${this.namespace}`);
    }
    disconnect(): void {
      log.calls.push(`disconnect ${this.namespace}`);
    }
    close(): void {
      log.calls.push(`close ${this.namespace}`);
    }
    free(): void {}
    emit(event: string, args: unknown[], opts: { ack?: boolean }): Promise<unknown[]> | undefined {
      log.calls.push(`emit ${this.namespace} ${event} ${JSON.stringify(args)}`);
      return opts.ack ? Promise.resolve([`ack ${event}`]) : undefined;
    }
    join(room: string): Promise<unknown[]> {
      log.calls.push(`join ${this.namespace} ${room}`);
      return Promise.resolve(["joined"]);
    }
    leave(room: string): Promise<unknown[]> {
      log.calls.push(`leave ${this.namespace} ${room}`);
      return Promise.resolve([]);
    }
    onEvent(): void {}
    onState(): void {}
    onConnectError(): void {}
    onFeed(): void {}
  }
  return {
    default: () => {
      log.loads++;
      return gate.ready;
    },
    WasmClient,
  };
});

/** A fresh src/index.ts whose module loads when `gate.release()` (or fails with `gate.fail`) is called. */
async function fresh() {
  vi.resetModules();
  gate.ready = new Promise<void>((resolve, reject) => {
    gate.release = resolve;
    gate.fail = reject;
  });
  return import("../src/index.js");
}

/** Lets the module's load and the callbacks after it run. */
async function settle(): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 0));
}

beforeEach(() => {
  log.calls.length = 0;
  log.loads = 0;
});

describe("before the module loads", () => {
  it("queues commands and runs them in order once it has", async () => {
    const { connect } = await fresh();
    const socket = connect("http://q.test/", { autoConnect: false });
    expect(socket.state).toEqual({ status: "disconnected", reason: "io client disconnect" });
    socket.emit("a", 1);
    const ack = socket.emitWithAck("b", 2);
    const joined = socket.join("room");
    socket.connect();
    expect(socket.state).toEqual({ status: "connecting" });
    socket.disconnect();
    expect(log.calls).toEqual([]);

    gate.release();
    await settle();
    expect(log.calls).toEqual([
      "new http://q.test/",
      'emit / a [1]',
      'emit / b [2]',
      "join / room",
      "connect /",
      "disconnect /",
    ]);
    await expect(ack).resolves.toBe("ack b");
    await expect(joined).resolves.toBe("joined");
    // Now straight to the client.
    socket.emit("c");
    expect(log.calls.at(-1)).toBe("emit / c []");
  });

  it("connects first when autoConnect is on", async () => {
    const { connect } = await fresh();
    const socket = connect("http://auto.test/");
    expect(socket.state).toEqual({ status: "connecting" });
    socket.emit("hi");
    gate.release();
    await settle();
    expect(log.calls).toEqual(["new http://auto.test/", "connect /", "emit / hi []"]);
  });

  it("keeps at most 1000 commands", async () => {
    const { connect } = await fresh();
    const socket = connect("http://full.test/", { autoConnect: false });
    for (let i = 0; i < 1000; i++) socket.emit("e", i);
    expect(() => socket.emit("e", 1000)).toThrow("more than 1000 commands");
  });

  it("a socket closed meanwhile creates no client and refuses commands", async () => {
    const { connect } = await fresh();
    const socket = connect("http://closed.test/");
    socket.emit("dropped");
    socket.close();
    socket.close();
    expect(() => socket.emit("x")).toThrow("this socket is closed");
    expect(() => socket.connect()).toThrow("this socket is closed");
    gate.release();
    await settle();
    expect(log.calls).toEqual([]);
  });

  it("a bad URL is reported once as connect_error, then every command throws", async () => {
    const { connect } = await fresh();
    const socket = connect("http://bad.test/");
    const errors: ConnectError[] = [];
    const states: ConnectionState[] = [];
    socket.on("connect_error", (e) => errors.push(e));
    socket.on("state", (s) => states.push(s));
    socket.emit("dropped");
    gate.release();
    await settle();
    expect(errors.map((e) => [e.message, e.willRetry])).toEqual([["invalid url", false]]);
    expect(states).toEqual([{ status: "disconnected", reason: "connect error" }]);
    expect(() => socket.emit("x")).toThrow("this socket is unusable: invalid url");
    expect(() => socket.connect()).toThrow("this socket is unusable");
    // Closing a broken socket is allowed (once), and then it is closed.
    socket.close();
    expect(() => socket.emit("x")).toThrow("this socket is closed");
    expect(log.calls).toEqual([]);
  });

  it("a module that fails to load breaks its sockets, even one closed meanwhile", async () => {
    const { connect, init } = await fresh();
    const open = connect("http://fail.test/a", { forceNew: true });
    const closed = connect("http://fail.test/b", { forceNew: true });
    const errors: string[] = [];
    open.on("connect_error", (e) => errors.push(e.message));
    closed.close();
    gate.fail(new Error("no wasm"));
    await expect(init()).rejects.toThrow("the WebAssembly module failed to load: no wasm");
    await settle();
    expect(errors).toEqual(["tidings: the WebAssembly module failed to load: no wasm"]);
    expect(open.state).toEqual({ status: "disconnected", reason: "connect error" });
    expect(() => open.emit("x")).toThrow("this socket is unusable");
    expect(closed.state).toEqual({ status: "disconnected", reason: "connect error" });
    expect(() => closed.emit("x")).toThrow("this socket is closed");
    expect(() => connect("http://fail.test/c")).toThrow("failed to load");
  });
});

describe("autoConnect: false", () => {
  it("loads no module and makes no client until connect() (a server render never connects)", async () => {
    const { connect } = await fresh();
    const socket = connect("http://idle.test/", { autoConnect: false });
    socket.on("x", () => {});
    socket.emit("early", 1);
    expect(socket.state).toEqual({ status: "disconnected", reason: "io client disconnect" });
    await settle();
    expect(log.loads).toBe(0);
    expect(log.calls).toEqual([]);

    socket.connect();
    expect(socket.state).toEqual({ status: "connecting" });
    expect(log.loads).toBe(1);
    gate.release();
    await settle();
    expect(log.calls).toEqual(["new http://idle.test/", "emit / early [1]", "connect /"]);
  });

  it("with the module loaded, makes its client at connect(), at once", async () => {
    const { connect, init } = await fresh();
    gate.release();
    await init();
    const socket = connect("http://idle-ready.test/", { autoConnect: false });
    socket.emit("early");
    expect(log.calls).toEqual([]);
    socket.connect();
    expect(log.calls).toEqual(["new http://idle-ready.test/", "emit / early []", "connect /"]);
    socket.close();
    expect(log.calls.at(-1)).toBe("close /");
  });

  it("reports a bad option at connect() as connect_error", async () => {
    const { connect, init } = await fresh();
    gate.release();
    await init();
    const socket = connect("http://bad-idle.test/", { autoConnect: false });
    const errors: string[] = [];
    socket.on("connect_error", (e) => errors.push(e.message));
    socket.connect();
    expect(errors).toEqual(["invalid url"]);
    expect(socket.state).toEqual({ status: "disconnected", reason: "connect error" });
    expect(() => socket.emit("x")).toThrow("this socket is unusable");
  });

  it("closed before connect(): nothing was ever made", async () => {
    const { connect } = await fresh();
    const socket = connect("http://never.test/", { autoConnect: false });
    socket.close();
    gate.release();
    await settle();
    expect(log.loads).toBe(0);
    expect(log.calls).toEqual([]);
    expect(() => socket.connect()).toThrow("this socket is closed");
  });

  it("a namespace riding its connection wakes it: the client is made, unconnected, and the namespace connects", async () => {
    const { connect, init } = await fresh();
    gate.release();
    await init();
    const main = connect("http://wake.test/", { autoConnect: false });
    const chat = connect("http://wake.test/chat");
    expect(log.calls).toEqual(["new http://wake.test/", "of /chat", "new http://wake.test/chat"]);
    expect(main.state).toEqual({ status: "disconnected", reason: "io client disconnect" });
    main.connect();
    expect(log.calls.at(-1)).toBe("connect /");
    chat.close();
    main.close();
  });
});

describe("a namespace over a shared connection", () => {
  it("stays idle until connect(), queueing, then opens over the first socket's client", async () => {
    const { connect, init } = await fresh();
    gate.release();
    await init();
    const main = connect("http://shared.test/");
    const chat = connect("http://shared.test/chat", { autoConnect: false });
    chat.emit("early");
    expect(chat.state).toEqual({ status: "disconnected", reason: "io client disconnect" });
    expect(log.calls).toEqual(["new http://shared.test/", "connect /"]);

    chat.connect();
    expect(log.calls.slice(2)).toEqual(["of /chat", "new http://shared.test/chat", "emit /chat early []"]);
    chat.connect(); // now open: straight to the client
    expect(log.calls.at(-1)).toBe("connect /chat");

    chat.close();
    expect(log.calls.at(-1)).toBe("close /chat");
    expect(() => chat.emit("x")).toThrow("this socket is closed");
    main.emit("still");
    expect(log.calls.at(-1)).toBe("emit / still []");
  });

  it("waits for the creator's client while the module loads; queued commands follow", async () => {
    const { connect } = await fresh();
    const main = connect("http://wait.test/", { autoConnect: false });
    const chat = connect("http://wait.test/chat");
    expect(chat.state).toEqual({ status: "connecting" });
    chat.emit("queued");
    chat.connect(); // already opening: queued as a command
    gate.release();
    await settle();
    expect(log.calls).toEqual([
      "new http://wait.test/",
      "of /chat",
      "new http://wait.test/chat",
      "emit /chat queued []",
      "connect /chat",
    ]);
    main.close();
    chat.close();
  });
});
