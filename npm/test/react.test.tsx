// Unit tests of tidings/react against FakeSocket (a test double) in jsdom, most under StrictMode,
// which mounts, unmounts and remounts every effect once.

import { act, cleanup, render, renderHook } from "@testing-library/react";
import { Activity, StrictMode, useEffect, useState, type ReactNode } from "react";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  createTidingsHooks,
  TidingsProvider,
  useConnectionState,
  useEmit,
  useEvent,
  useRoom,
  useTidings,
  type Emitter,
} from "../src/react.js";
import type { AuthObject, ConnectionState, TidingsOptions } from "../src/types.js";
import { deferred, FakeSocket } from "./fake-socket.js";

// The provider's `url` mode calls `connect` from src/index.js (the wasm client): replaced here by
// one that hands out FakeSockets and records how it was called.
const connected = vi.hoisted(() => [] as { url: string; options: TidingsOptions | undefined; socket: FakeSocket }[]);
vi.mock("../src/index.js", async () => {
  const { FakeSocket: Fake } = await import("./fake-socket.js");
  return {
    connect: (url: string, options?: TidingsOptions) => {
      const socket = new Fake();
      connected.push({ url, options, socket });
      return socket;
    },
  };
});

afterEach(() => {
  cleanup();
  connected.length = 0;
});

/** Lets deferred closes and leaves (one macrotask) run. */
async function tick(): Promise<void> {
  await act(async () => {
    await new Promise((resolve) => setTimeout(resolve, 0));
  });
}

function strictWith(socket: FakeSocket) {
  return function Wrapper({ children }: { children: ReactNode }) {
    return (
      <StrictMode>
        <TidingsProvider client={socket}>{children}</TidingsProvider>
      </StrictMode>
    );
  };
}

describe("useTidings", () => {
  it("throws a clear error outside a provider", () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    expect(() => renderHook(() => useTidings())).toThrow(/inside a <TidingsProvider>/);
  });

  it("returns the client given to the provider, which it neither connects nor closes", async () => {
    const socket = new FakeSocket();
    const { result, unmount } = renderHook(() => useTidings(), { wrapper: strictWith(socket) });
    expect(result.current).toBe(socket);
    unmount();
    await tick();
    expect(socket.connectCalls).toBe(0);
    expect(socket.closeCalls).toBe(0);
  });
});

describe("TidingsProvider with a url", () => {
  function App({ url, options, children }: { url: string; options?: TidingsOptions; children?: ReactNode }) {
    return (
      <StrictMode>
        {options === undefined ? (
          <TidingsProvider url={url}>{children}</TidingsProvider>
        ) : (
          <TidingsProvider url={url} options={options}>
            {children}
          </TidingsProvider>
        )}
      </StrictMode>
    );
  }

  it("creates and connects one client under StrictMode, and closes it after unmount", async () => {
    let seen: unknown;
    function Probe() {
      seen = useTidings();
      return null;
    }
    const view = render(
      <App url="https://example.test" options={{ ackTimeout: 5000 }}>
        <Probe />
      </App>,
    );
    await tick();
    expect(connected).toHaveLength(1);
    const [first] = connected;
    expect(first?.url).toBe("https://example.test");
    // Created idle, connected by the provider's effect exactly once.
    expect(first?.options).toEqual({ ackTimeout: 5000, autoConnect: false });
    expect(first?.socket.connectCalls).toBe(1);
    expect(first?.socket.closeCalls).toBe(0);
    expect(seen).toBe(first?.socket);

    view.rerender(
      <App url="https://example.test" options={{ ackTimeout: 5000 }}>
        <Probe />
      </App>,
    );
    await tick();
    expect(connected).toHaveLength(1);

    view.unmount();
    expect(first?.socket.closeCalls).toBe(0); // deferred by one macrotask
    await tick();
    expect(first?.socket.closeCalls).toBe(1);
  });

  it("closes the client while hidden in <Activity> and makes a new one when shown again", async () => {
    let seen: unknown;
    function Probe() {
      seen = useTidings();
      return null;
    }
    function Hideable({ mode }: { mode: "visible" | "hidden" }) {
      return (
        <StrictMode>
          <Activity mode={mode}>
            <TidingsProvider url="https://example.test">
              <Probe />
            </TidingsProvider>
          </Activity>
        </StrictMode>
      );
    }
    const view = render(<Hideable mode="visible" />);
    await tick();
    view.rerender(<Hideable mode="hidden" />);
    await tick();
    expect(connected.map((c) => c.socket.closeCalls)).toEqual([1]);
    view.rerender(<Hideable mode="visible" />);
    await tick();
    expect(connected.map((c) => [c.socket.connectCalls, c.socket.closeCalls])).toEqual([
      [1, 1],
      [1, 0],
    ]);
    expect(seen).toBe(connected[1]?.socket);
  });

  it("does not connect when autoConnect is false", async () => {
    render(<App url="https://example.test" options={{ autoConnect: false }} />);
    await tick();
    expect(connected).toHaveLength(1);
    expect(connected[0]?.socket.connectCalls).toBe(0);
  });

  it("replaces the client when the url or a JSON-visible option changes", async () => {
    const view = render(<App url="https://a.test" options={{ auth: { token: "t1" } }} />);
    await tick();
    view.rerender(<App url="https://a.test" options={{ auth: { token: "t2" } }} />);
    await tick();
    view.rerender(<App url="https://b.test" options={{ auth: { token: "t2" } }} />);
    await tick();
    expect(connected.map((c) => [c.url, c.socket.connectCalls, c.socket.closeCalls])).toEqual([
      ["https://a.test", 1, 1],
      ["https://a.test", 1, 1],
      ["https://b.test", 1, 0],
    ]);
  });

  it("keeps the client when only the auth function's identity changes, and calls the latest one", async () => {
    const view = render(<App url="https://a.test" options={{ auth: () => ({ token: "old" }) }} />);
    await tick();
    view.rerender(<App url="https://a.test" options={{ auth: () => ({ token: "new" }) }} />);
    await tick();
    expect(connected).toHaveLength(1);
    const auth = connected[0]?.options?.auth;
    expect(typeof auth).toBe("function");
    const value: AuthObject | PromiseLike<AuthObject> | undefined = typeof auth === "function" ? auth() : auth;
    expect(value).toEqual({ token: "new" });
  });
});

describe("useEvent", () => {
  it("registers one listener under StrictMode and always calls the latest handler", async () => {
    const socket = new FakeSocket();
    const calls: string[] = [];
    const { rerender, unmount } = renderHook(
      ({ tag }: { tag: string }) =>
        useEvent("message", (...args: unknown[]) => {
          calls.push(`${tag}:${String(args[0])}`);
        }),
      { wrapper: strictWith(socket), initialProps: { tag: "first" } },
    );
    expect(socket.listenerCount("message")).toBe(1);
    act(() => socket.receive("message", "a"));
    rerender({ tag: "second" });
    rerender({ tag: "third" });
    expect(socket.listenerCount("message")).toBe(1);
    act(() => socket.receive("message", "b"));
    expect(calls).toEqual(["first:a", "third:b"]);
    unmount();
    expect(socket.totalListeners()).toBe(0);
  });

  it("passes every argument as sent (the recovery offset last), and a throwing handler stops no other", () => {
    const socket = new FakeSocket();
    const got: unknown[][] = [];
    function Throws() {
      useEvent("news", () => {
        throw new Error("handler threw");
      });
      return null;
    }
    function Records() {
      useEvent("news", (...args: unknown[]) => {
        got.push(args);
      });
      return null;
    }
    render(
      <StrictMode>
        <TidingsProvider client={socket}>
          <Throws />
          <Records />
        </TidingsProvider>
      </StrictMode>,
    );
    act(() => socket.receive("news", { title: "one" }, "Q8pA"));
    act(() => socket.receive("news", { title: "two" }, "Q8pB"));
    expect(got).toEqual([
      [{ title: "one" }, "Q8pA"],
      [{ title: "two" }, "Q8pB"],
    ]);
    expect(socket.reported.map((e) => (e as Error).message)).toEqual(["handler threw", "handler threw"]);
  });

  it("moves the listener when the event name changes", () => {
    const socket = new FakeSocket();
    const { rerender } = renderHook(({ event }: { event: string }) => useEvent(event, () => {}), {
      wrapper: strictWith(socket),
      initialProps: { event: "a" },
    });
    rerender({ event: "b" });
    expect(socket.listenerCount("a")).toBe(0);
    expect(socket.listenerCount("b")).toBe(1);
  });

  it("listens to reserved events", () => {
    const socket = new FakeSocket();
    const reasons: string[] = [];
    renderHook(() => useEvent("disconnect", (reason) => reasons.push(reason)), { wrapper: strictWith(socket) });
    act(() => {
      socket.open();
      socket.drop("transport close");
    });
    expect(reasons).toEqual(["transport close"]);
  });
});

describe("useConnectionState", () => {
  it("follows the state events with one shared listener under StrictMode", () => {
    const socket = new FakeSocket();
    const seen: ConnectionState[][] = [[], []];
    function Status({ index }: { index: 0 | 1 }) {
      const state = useConnectionState();
      useEffect(() => {
        seen[index]?.push(state);
      }, [state, index]);
      return <span data-testid={`s${index}`}>{state.status}</span>;
    }
    const view = render(
      <StrictMode>
        <TidingsProvider client={socket}>
          <Status index={0} />
          <Status index={1} />
        </TidingsProvider>
      </StrictMode>,
    );
    expect(socket.listenerCount("state")).toBe(1);
    expect(view.getByTestId("s0").textContent).toBe("disconnected");

    act(() => socket.connect());
    expect(view.getByTestId("s1").textContent).toBe("connecting");
    act(() => socket.open("abc", true));
    expect(view.getByTestId("s0").textContent).toBe("connected");
    const last = seen[0]?.at(-1);
    expect(last?.status === "connected" && last.recovered && last.id).toBe("abc");

    view.unmount();
    expect(socket.listenerCount("state")).toBe(0);
  });

  it("does not loop when socket.state returns a fresh object on every read", () => {
    const socket = new FakeSocket();
    socket.freshStateObjects = true;
    socket.connect();
    let renders = 0;
    const { result } = renderHook(
      () => {
        renders += 1;
        return useConnectionState();
      },
      { wrapper: strictWith(socket) },
    );
    expect(result.current.status).toBe("connecting");
    const before = renders;
    act(() => socket.open());
    expect(result.current.status).toBe("connected");
    expect(renders - before).toBeLessThanOrEqual(4); // one update, doubled by StrictMode, plus slack
  });
});

describe("useRoom", () => {
  function Room({ name }: { name: string | null }) {
    const room = useRoom(name);
    return <span data-testid={`room-${name ?? "none"}`}>{room.status}</span>;
  }

  it("joins once for many components under StrictMode and leaves once after the last", async () => {
    const socket = new FakeSocket();
    const reply = deferred<unknown>();
    socket.roomReply = (kind) => (kind === "join" ? reply.promise : Promise.resolve(undefined));
    function App({ count }: { count: number }) {
      return (
        <StrictMode>
          <TidingsProvider client={socket}>
            {Array.from({ length: count }, (_, i) => (
              <Room key={i} name="chat:1" />
            ))}
          </TidingsProvider>
        </StrictMode>
      );
    }
    const view = render(<App count={2} />);
    await tick();
    expect(socket.joins).toEqual(["chat:1"]);
    expect(view.getAllByTestId("room-chat:1").map((n) => n.textContent)).toEqual(["joining", "joining"]);

    await act(async () => reply.resolve("ok"));
    expect(view.getAllByTestId("room-chat:1").map((n) => n.textContent)).toEqual(["joined", "joined"]);

    view.rerender(<App count={1} />);
    await tick();
    expect(socket.leaves).toEqual([]);
    view.rerender(<App count={0} />);
    await tick();
    expect(socket.joins).toEqual(["chat:1"]);
    expect(socket.leaves).toEqual(["chat:1"]);

    view.rerender(<App count={1} />);
    await tick();
    expect(socket.joins).toEqual(["chat:1", "chat:1"]);
  });

  it("reports a failed join as an Error", async () => {
    const socket = new FakeSocket();
    socket.roomReply = () => Promise.reject(new Error("forbidden"));
    const { result } = renderHook(() => useRoom("secret"), { wrapper: strictWith(socket) });
    await tick();
    expect(result.current.status).toBe("failed");
    expect(result.current.error?.message).toBe("forbidden");
    expect(result.current.joined).toBe(false);
  });

  it("moves between rooms and does nothing for null", async () => {
    const socket = new FakeSocket();
    const { result, rerender } = renderHook(({ name }: { name: string | null }) => useRoom(name), {
      wrapper: strictWith(socket),
      initialProps: { name: null as string | null },
    });
    await tick();
    expect(result.current.status).toBe("idle");
    expect(socket.joins).toEqual([]);
    rerender({ name: "a" });
    await tick();
    expect(result.current).toEqual({ status: "joined", joined: true, error: undefined });
    rerender({ name: "b" });
    await tick();
    expect(socket.joins).toEqual(["a", "b"]);
    expect(socket.leaves).toEqual(["a"]);
  });
});

describe("useEmit", () => {
  it("returns one stable emitter that emits on the socket", async () => {
    const socket = new FakeSocket();
    socket.ackReply = (event, args) => ({ event, echo: args[0] });
    const seen = new Set<Emitter>();
    const { result, rerender } = renderHook(
      () => {
        const emitter = useEmit();
        seen.add(emitter);
        return emitter;
      },
      { wrapper: strictWith(socket) },
    );
    rerender();
    expect(seen.size).toBe(1);
    const { emit, emitWithAck } = result.current;
    emit("typing", true);
    await expect(emitWithAck("echo", 42)).resolves.toEqual({ event: "echo", echo: 42 });
    expect(socket.emitted.map((e) => [e.event, e.args])).toEqual([
      ["typing", [true]],
      ["echo", [42]],
    ]);
  });
});

describe("createTidingsHooks", () => {
  it("returns the plain hooks, only typed", () => {
    const hooks = createTidingsHooks<{ ping: (n: number) => void }, { pong: (n: number) => void }>();
    expect(hooks.useEvent).toBe(useEvent);
    expect(hooks.useEmit).toBe(useEmit);
    expect(hooks.useRoom).toBe(useRoom);
    expect(hooks.useConnectionState).toBe(useConnectionState);
  });

  it("works end to end with a typed map", () => {
    const socket = new FakeSocket<{ ping: (n: number) => void }, { pong: (n: number) => void }>();
    const hooks = createTidingsHooks<{ ping: (n: number) => void }, { pong: (n: number) => void }>();
    function Pinger() {
      const { emit } = hooks.useEmit();
      const [last, setLast] = useState(0);
      hooks.useEvent("ping", (n) => {
        setLast(n);
        emit("pong", n + 1);
      });
      return <span data-testid="last">{last}</span>;
    }
    const view = render(
      <StrictMode>
        <hooks.TidingsProvider client={socket}>
          <Pinger />
        </hooks.TidingsProvider>
      </StrictMode>,
    );
    act(() => socket.receive("ping", 7));
    expect(view.getByTestId("last").textContent).toBe("7");
    expect(socket.emitted).toEqual([{ event: "pong", args: [8], volatile: false }]);
  });
});
