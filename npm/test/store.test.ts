// Unit tests of src/store.ts, the framework-free half of tidings/react, against FakeSocket: no
// React, no renders. What the hooks add on top (StrictMode, re-renders) is in react.test.tsx.

import { afterEach, describe, expect, it, vi } from "vitest";
import { clientKey, createClient, emitterOf, OwnedClient, Rooms, roomsOf, stateStore, type UntypedSocket } from "../src/store.js";
import type { AuthObject, ConnectionState, TidingsOptions } from "../src/types.js";
import { deferred, FakeSocket } from "./fake-socket.js";

// createClient calls `connect` from src/index.js (the wasm client): replaced by one that hands out
// FakeSockets and records its options.
const connected = vi.hoisted(() => [] as { url: string; options: TidingsOptions | undefined }[]);
vi.mock("../src/index.js", async () => {
  const { FakeSocket: Fake } = await import("./fake-socket.js");
  return {
    connect: (url: string, options?: TidingsOptions) => {
      connected.push({ url, options });
      return new Fake();
    },
  };
});

afterEach(() => {
  connected.length = 0;
});

/** Lets deferred leaves and closes (one macrotask) run, and settled joins notify. */
function tick(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

function untyped(socket: FakeSocket): UntypedSocket {
  return socket;
}

describe("Rooms (reference-counted memberships)", () => {
  it("two users of a room cause one join; one leaving keeps it; both leaving cause one leave", async () => {
    const socket = new FakeSocket();
    const rooms = new Rooms(socket);
    rooms.acquire("chat:1");
    rooms.acquire("chat:1");
    expect(socket.joins).toEqual(["chat:1"]);

    rooms.release("chat:1");
    await tick();
    expect(socket.leaves).toEqual([]);
    expect(rooms.state("chat:1").status).toBe("joined");

    rooms.release("chat:1");
    expect(socket.leaves).toEqual([]); // deferred by one macrotask
    await tick();
    expect(socket.joins).toEqual(["chat:1"]);
    expect(socket.leaves).toEqual(["chat:1"]);

    // Taken again after the leave: a new join.
    rooms.acquire("chat:1");
    expect(socket.joins).toEqual(["chat:1", "chat:1"]);
  });

  it("a release and an acquire within a tick (StrictMode's remount) send neither a leave nor a second join", async () => {
    const socket = new FakeSocket();
    const rooms = new Rooms(socket);
    rooms.acquire("a");
    rooms.release("a");
    rooms.acquire("a");
    await tick();
    expect(socket.joins).toEqual(["a"]);
    expect(socket.leaves).toEqual([]);
    expect(rooms.state("a").status).toBe("joined");
  });

  it("tells watchers of the room, and only them, when the join settles; the state object is stable", async () => {
    const socket = new FakeSocket();
    const reply = deferred<unknown>();
    socket.roomReply = (kind) => (kind === "join" ? reply.promise : Promise.resolve(undefined));
    const rooms = new Rooms(socket);
    const seen: string[] = [];
    const unwatch = rooms.watch("a", () => seen.push(`a:${rooms.state("a").status}`));
    rooms.watch("b", () => seen.push("b"));

    rooms.acquire("a");
    expect(seen).toEqual(["a:joining"]);
    const joining = rooms.state("a");
    expect(rooms.state("a")).toBe(joining);

    reply.resolve("ok");
    await tick();
    expect(seen).toEqual(["a:joining", "a:joined"]);
    expect(rooms.state("a")).toEqual({ status: "joined", joined: true, error: undefined });
    expect(rooms.state("a")).toBe(rooms.state("a"));

    unwatch();
    rooms.release("a");
    rooms.acquire("a");
    expect(seen).toHaveLength(2);
  });

  it("reports a refused join as an Error, and ignores a join settling after its membership ended", async () => {
    const socket = new FakeSocket();
    socket.roomReply = (kind) => (kind === "join" ? Promise.reject(new Error("forbidden")) : Promise.resolve(undefined));
    const rooms = new Rooms(socket);
    rooms.acquire("secret");
    await tick();
    const state = rooms.state("secret");
    expect(state.status).toBe("failed");
    expect(state.error?.message).toBe("forbidden");

    // The answers to the next two joins, in order (the join of "secret" came before them).
    const replies = [deferred<unknown>(), deferred<unknown>()];
    const before = socket.joins.length;
    socket.roomReply = (kind) =>
      kind === "join" ? (replies[socket.joins.length - 1 - before]?.promise ?? Promise.resolve()) : Promise.resolve();
    rooms.acquire("slow");
    rooms.release("slow");
    await tick(); // left before the server answered the join
    rooms.acquire("slow");
    replies[1]?.resolve("ok");
    await tick();
    expect(rooms.state("slow").status).toBe("joined");
    replies[0]?.reject(new Error("too late")); // the first membership's answer changes nothing
    await tick();
    expect(rooms.state("slow").status).toBe("joined");
  });

  it("does not throw when the socket is closed before the leave is sent", async () => {
    const socket = new FakeSocket();
    const rooms = new Rooms(socket);
    rooms.acquire("a");
    rooms.release("a");
    socket.close();
    await tick();
    expect(socket.leaves).toEqual([]);
  });

  it("roomsOf gives every caller the same registry per socket", () => {
    const socket = untyped(new FakeSocket());
    expect(roomsOf(socket)).toBe(roomsOf(socket));
    expect(roomsOf(socket)).not.toBe(roomsOf(untyped(new FakeSocket())));
  });
});

describe("stateStore", () => {
  it("notifies its subscribers on state events through one shared listener, removed with the last", () => {
    const socket = new FakeSocket();
    const store = stateStore(socket);
    expect(stateStore(socket)).toBe(store);
    const calls: string[] = [];
    const first = store.subscribe(() => calls.push(`1:${store.getSnapshot().status}`));
    const second = store.subscribe(() => calls.push(`2:${store.getSnapshot().status}`));
    expect(socket.listenerCount("state")).toBe(1);

    socket.connect();
    socket.open("sid");
    expect(calls).toEqual(["1:connecting", "2:connecting", "1:connected", "2:connected"]);

    first();
    expect(socket.listenerCount("state")).toBe(1);
    second();
    expect(socket.listenerCount("state")).toBe(0);
    socket.drop("transport close");
    expect(calls).toHaveLength(4);
  });

  it("returns the same snapshot until the state changes, even when socket.state is a fresh object per read", () => {
    const socket = new FakeSocket();
    socket.freshStateObjects = true;
    const store = stateStore(socket);
    const before = store.getSnapshot();
    expect(store.getSnapshot()).toBe(before);
    expect(before).toEqual({ status: "disconnected", reason: "io client disconnect" });

    socket.connect();
    const connecting = store.getSnapshot();
    expect(connecting).not.toBe(before);
    expect(connecting.status).toBe("connecting");
    expect(store.getSnapshot()).toBe(connecting);

    socket.open("x", true);
    const connected: ConnectionState = store.getSnapshot();
    expect(connected).toEqual({ status: "connected", transport: "websocket", recovered: true, id: "x" });
    expect(store.getSnapshot()).toBe(connected);
  });
});

describe("emitterOf", () => {
  it("is one object per socket that emits on it", async () => {
    const socket = new FakeSocket();
    socket.ackReply = (_event, args) => args[0];
    const emitter = emitterOf(socket);
    expect(emitterOf(socket)).toBe(emitter);
    emitter.emit("typing", true);
    await expect(emitter.emitWithAck("echo", 42)).resolves.toBe(42);
    expect(socket.emitted.map((e) => [e.event, e.args])).toEqual([
      ["typing", [true]],
      ["echo", [42]],
    ]);
  });
});

describe("OwnedClient", () => {
  it("connects on the first mount only, survives an unmount and remount within a tick, and closes a tick after the last unmount", async () => {
    const socket = new FakeSocket();
    const owned = new OwnedClient(socket, "k", true);
    owned.mount();
    owned.unmount();
    owned.mount();
    await tick();
    expect([socket.connectCalls, socket.closeCalls, owned.closed]).toEqual([1, 0, false]);

    owned.unmount();
    expect(socket.closeCalls).toBe(0);
    await tick();
    expect([socket.connectCalls, socket.closeCalls, owned.closed]).toEqual([1, 1, true]);
  });

  it("does not connect with autoConnect false", () => {
    const socket = new FakeSocket();
    new OwnedClient(socket, "k", false).mount();
    expect(socket.connectCalls).toBe(0);
  });
});

describe("createClient and clientKey", () => {
  it("creates an idle client whose auth function calls the latest one", async () => {
    const first = (): AuthObject => ({ token: "old" });
    const auth: { current: TidingsOptions["auth"] } = { current: first };
    createClient("https://a.test", { auth: first, ackTimeout: 5 }, auth);
    auth.current = async () => ({ token: "new" });
    const options = connected[0]?.options;
    expect(options?.autoConnect).toBe(false);
    expect(options?.ackTimeout).toBe(5);
    const sent = options?.auth;
    const value: AuthObject | PromiseLike<AuthObject> | undefined = typeof sent === "function" ? sent() : sent;
    await expect(value).resolves.toEqual({ token: "new" });
  });

  it("keeps an auth object as it is", () => {
    const auth = { current: { token: "t" } };
    createClient("https://a.test", { auth: auth.current }, auth);
    expect(connected[0]?.options).toEqual({ auth: { token: "t" }, autoConnect: false });
  });

  it("counts functions by presence, not identity", () => {
    const a = clientKey("https://a.test", { auth: () => ({ token: "1" }) });
    expect(clientKey("https://a.test", { auth: () => ({ token: "2" }) })).toBe(a);
    expect(clientKey("https://a.test", { auth: { token: "1" } })).not.toBe(a);
    expect(clientKey("https://b.test", { auth: () => ({ token: "1" }) })).not.toBe(a);
    expect(clientKey("https://a.test", undefined)).toBe(clientKey("https://a.test", {}));
  });
});
