// How `Socket` hands server events to its listeners, with the wasm module replaced by a double
// whose `onEvent` callback the test calls as the driver would: arguments as sent (the recovery
// offset last), and a listener that throws neither stops the other listeners nor later events.
// The real driver in Chromium: sdk-wasm/tests/browser.rs (`a_throwing_callback_loses_no_later_event`,
// `listeners_get_every_argument_as_sent_and_repeated_volatile_events`) and test/browser/smoke.mjs.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

type OnEvent = (
  name: string,
  args: unknown[],
  offset: string | undefined,
  source: string,
  ackId: number | undefined,
  envelopeId?: string,
) => void;

const clients = vi.hoisted(
  () => [] as Array<{ onEventCallback: OnEvent | undefined; acks: Array<[number, unknown[]]>; url: string }>,
);

vi.mock("../src/wasm/tidings_wasm.js", () => {
  class WasmClient {
    onEventCallback: OnEvent | undefined;
    url: string;
    acks: Array<[number, unknown[]]> = [];
    state = { status: "disconnected", reason: "io client disconnect" };
    recovered = false;
    constructor(url: string) {
      this.url = url;
      clients.push(this);
    }
    connect(): void {}
    disconnect(): void {}
    close(): void {}
    free(): void {}
    ack(id: number, args: unknown[]): void {
      this.acks.push([id, args]);
    }
    onEvent(f: OnEvent | undefined): void {
      this.onEventCallback = f;
    }
    onState(): void {}
    onConnectError(): void {}
    onFeed(): void {}
  }
  return { default: () => Promise.resolve(), WasmClient };
});

const { connect, init } = await import("../src/index.js");

describe("server events reach the listeners", () => {
  let reported: unknown[];

  beforeEach(async () => {
    await init();
    clients.length = 0;
    reported = [];
    vi.stubGlobal("reportError", (e: unknown) => reported.push(e));
  });

  afterEach(() => {
    vi.unstubAllGlobals();
  });

  /** A socket and a function delivering an event the way the driver does (one call per event). */
  function socketWithServer() {
    const socket = connect(`http://events.test/${clients.length}`, { forceNew: true });
    const client = clients.at(-1);
    if (client?.onEventCallback === undefined) throw new Error("no onEvent callback registered");
    const deliver = client.onEventCallback;
    return { socket, client, deliver };
  }

  it("with every argument as sent, the recovery offset last", () => {
    const { socket, deliver } = socketWithServer();
    const got: unknown[][] = [];
    const any: unknown[][] = [];
    socket.on("news", (...args: unknown[]) => got.push(args));
    socket.onAny((name, ...args) => any.push([name, ...args]));
    deliver("news", ["one", "Q8pA"], "Q8pA", "socket", undefined);
    // A volatile event carries no offset; its last argument still reaches the listener, every time.
    deliver("vol", ["x"], "x", "socket", undefined);
    deliver("vol", ["x"], "x", "socket", undefined);
    expect(got).toEqual([["one", "Q8pA"]]);
    expect(any).toEqual([
      ["news", "one", "Q8pA"],
      ["vol", "x"],
      ["vol", "x"],
    ]);
    // `lastEventMeta` is on the class, not (yet) on the `Socket` interface.
    expect((socket as unknown as { lastEventMeta: unknown }).lastEventMeta).toEqual({ offset: "x", source: "socket" });
  });

  it("lastEventMeta (on the Socket interface) describes the event being delivered, before its listeners run", () => {
    const { socket, deliver } = socketWithServer();
    expect(socket.lastEventMeta).toBeUndefined();
    const seen: unknown[] = [];
    socket.on("news", () => seen.push(socket.lastEventMeta));
    deliver("news", ["one", "Q8pA"], "Q8pA", "socket", undefined);
    deliver("news", ["two"], undefined, "feed", undefined);
    expect(seen).toEqual([
      { offset: "Q8pA", source: "socket" },
      { offset: undefined, source: "feed" },
    ]);
    expect(socket.lastEventMeta).toEqual({ offset: undefined, source: "feed" });
  });

  it("a listener that throws stops neither the other listeners nor later events", () => {
    const { socket, client, deliver } = socketWithServer();
    const order: string[] = [];
    socket.onAny((name, n) => {
      order.push(`any ${name} ${String(n)}`);
      if (n === 2) throw new Error("onAny threw");
    });
    socket.on("tick", (n: unknown) => {
      order.push(`first ${String(n)}`);
      if (n === 1) throw new Error("listener threw");
    });
    socket.once("tick", (n: unknown) => {
      order.push(`once ${String(n)}`);
      throw new Error("once threw");
    });
    socket.on("tick", (n: unknown, ack?: unknown) => {
      order.push(`last ${String(n)}`);
      if (typeof ack === "function") ack("got", n);
    });
    deliver("tick", [1], undefined, "socket", undefined);
    deliver("tick", [2], undefined, "socket", undefined);
    deliver("tick", [3], undefined, "socket", 7);
    expect(order).toEqual([
      "any tick 1",
      "first 1",
      "once 1",
      "last 1",
      "any tick 2",
      "first 2",
      "last 2",
      "any tick 3",
      "first 3",
      "last 3",
    ]);
    // Each exception is reported (as uncaught errors are), none is swallowed.
    expect(reported.map((e) => (e as Error).message)).toEqual(["listener threw", "once threw", "onAny threw"]);
    // The ack callback of a later event still answers the server.
    expect(client.acks).toEqual([[7, ["got", 3]]]);
  });

  it("reports to console.error where reportError is missing", () => {
    vi.stubGlobal("reportError", undefined);
    const logged = vi.spyOn(console, "error").mockImplementation(() => {});
    const { socket, deliver } = socketWithServer();
    const seen: unknown[] = [];
    socket.on("a", () => {
      throw new Error("boom");
    });
    socket.on("a", (x: unknown) => seen.push(x));
    deliver("a", [1], undefined, "socket", undefined);
    deliver("a", [2], undefined, "socket", undefined);
    expect(seen).toEqual([1, 2]);
    expect(logged).toHaveBeenCalledTimes(2);
  });

  it("validate: an invalid event reaches no listener, is reported with its problems, and later events go on", () => {
    const socket = connect(`http://events.test/v${clients.length}`, {
      forceNew: true,
      validate: (event, args) => {
        if (event === "boom") throw new Error("validator threw");
        return typeof args[0] === "number" ? [] : [`${event}: expected a number`];
      },
    });
    const deliver = clients.at(-1)?.onEventCallback;
    if (deliver === undefined) throw new Error("no onEvent callback registered");
    const client = clients.at(-1)!;
    const got: unknown[][] = [];
    const invalid: unknown[] = [];
    socket.onAny((name, ...args) => got.push([name, ...args]));
    socket.on("invalid", (r) => invalid.push(r));
    deliver("n", [1], undefined, "socket", undefined);
    deliver("n", ["one"], "Q8", "feed", 4);
    deliver("boom", [2], undefined, "socket", undefined);
    deliver("n", [3], undefined, "socket", undefined);
    expect(got).toEqual([
      ["n", 1],
      ["n", 3],
    ]);
    expect(invalid).toEqual([
      { event: "n", args: ["one"], problems: ["n: expected a number"], meta: { offset: "Q8", source: "feed" } },
      { event: "boom", args: [2], problems: [new Error("validator threw")], meta: { offset: undefined, source: "socket" } },
    ]);
    // An invalid event that asked for an ack is not answered: the application never handled it.
    expect(client.acks).toEqual([]);
  });

  it("validate: without an invalid listener, refusals are logged with console.warn", () => {
    const warned = vi.spyOn(console, "warn").mockImplementation(() => {});
    const socket = connect(`http://events.test/w${clients.length}`, { forceNew: true, validate: () => ["bad"] });
    const deliver = clients.at(-1)?.onEventCallback;
    if (deliver === undefined) throw new Error("no onEvent callback registered");
    const got: unknown[] = [];
    socket.on("x", (v: unknown) => got.push(v));
    deliver("x", [1], undefined, "socket", undefined);
    expect(got).toEqual([]);
    expect(warned).toHaveBeenCalledTimes(1);
    warned.mockRestore();
  });

  it("pattern listeners get every matching event with its name first, after the exact listeners", () => {
    const { socket, deliver } = socketWithServer();
    const got: string[] = [];
    socket.on("task.created", () => got.push("exact task.created"));
    socket.on("task.*", (event, ...args) => got.push(`task.* ${event} ${JSON.stringify(args)}`));
    socket.on("crm:*", (event) => got.push(`crm:* ${event}`));
    socket.on("*", (event) => got.push(`* ${event}`));
    const once = (event: string) => got.push(`once task.* ${event}`);
    socket.once("task.*", once);
    deliver("task.created", [{ n: 1 }], undefined, "socket", undefined);
    deliver("crm:customer:updated", [], undefined, "feed", undefined);
    deliver("taskforce", [], undefined, "socket", undefined);
    socket.off("task.*");
    deliver("task.done", [], undefined, "socket", undefined);
    expect(got).toEqual([
      "exact task.created",
      'task.* task.created [{"n":1}]',
      "once task.* task.created",
      "* task.created",
      "crm:* crm:customer:updated",
      "* crm:customer:updated",
      "* taskforce",
      "* task.done",
    ]);
  });

  it("lastEventMeta.id is the envelope id the driver gives (the core's rule; tested in sdk-core and end to end)", () => {
    const { socket, deliver } = socketWithServer();
    const ids: unknown[] = [];
    socket.onAny(() => ids.push(socket.lastEventMeta?.id));
    deliver("a", [{ id: "e1", type: "a", data: {} }], undefined, "socket", undefined, "e1");
    deliver("a", [{ id: 1.5e3, data: null }], undefined, "socket", undefined, "1.5e3");
    deliver("a", [{ id: "task-1", title: "x" }], undefined, "socket", undefined, undefined);
    expect(ids).toEqual(["e1", "1.5e3", undefined]);
  });

  it("query is added to the URL", () => {
    connect("http://events.test/q?a=1", { forceNew: true, query: { token: "x y", b: "2" } });
    expect(clients.at(-1)?.url).toBe("http://events.test/q?a=1&token=x+y&b=2");
    connect("http://events.test/q2", { forceNew: true, query: { b: "2" } });
    expect(clients.at(-1)?.url).toBe("http://events.test/q2?b=2");
  });
});
