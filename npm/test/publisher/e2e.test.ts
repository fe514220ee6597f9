// @vitest-environment node
// `tidings/publisher` against the REAL reference server (the `tidings-example-server` binary,
// built by `cargo build -p tidings-example-server`; the tests fail, saying so, when it is not),
// through an HTTP fault proxy: 503s, answers lost after the server handled the request, and a
// server restart publish each event exactly once, in order (read back from the server's feed), one
// request per event or in batches; a refusal in a batch fails that event only; a server without
// the batch endpoint gets single requests.

import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { Publisher, PublishRejectedError, type Published } from "../../src/publisher.js";
import { BATCH_PATH, FaultProxy, feed, KEY, killAll, ReferenceServer, removeDir, serverBinary, tempDir } from "./harness.js";

const T = 60_000;
const fast = { minMs: 50, maxMs: 400, factor: 2, jitter: 0.5 } as const;
const cleanup: (() => Promise<void> | void)[] = [];

beforeAll(() => {
  serverBinary(); // throws with how to build it when it is missing
});

afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
  killAll();
});

async function setup(name: string): Promise<{ dir: string; server: ReferenceServer; proxy: FaultProxy }> {
  const dir = tempDir(name);
  cleanup.push(() => removeDir(dir));
  const server = await ReferenceServer.start(dir);
  const proxy = await FaultProxy.start(server.addr);
  cleanup.push(() => proxy.stop());
  return { dir, server, proxy };
}

const seqs = (events: { data: { data: unknown } }[]): unknown[] =>
  events.map((e) => (e.data.data as { seq?: unknown }).seq);

describe("Publisher against the reference server", () => {
  it(
    "publishes each event once and in order through 503s, lost answers and a restart (one request per event)",
    async () => {
      const { dir, server, proxy } = await setup("retries");
      const publisher = new Publisher<{ "task.created": { seq: number } }>({
        url: proxy.origin,
        apiKey: KEY,
        backoff: fast,
        batchMax: 1,
      });
      const answers: Promise<Published>[] = [];
      const publish = (from: number, to: number): void => {
        for (let seq = from; seq < to; seq++) {
          answers.push(publisher.publish({ room: "tenant:acme" }, "task.created", { seq }, { correlationId: `req-${seq}` }));
        }
      };
      publish(0, 2);
      await publisher.flush();
      // Request 3 is handled but its answer lost, the next two get a 503 (then the retry of 3 is
      // answered from its idempotency key), and the server restarts in the middle of the stream.
      proxy.plan.push("lose-answer", "unavailable", "unavailable");
      publish(2, 10);
      await publisher.flush();
      expect(proxy.injected).toBe(3);
      await server.stop();
      publish(10, 20);
      // Nothing can land while the server is down: flush waits.
      const flushed = publisher.flush().then(() => "flushed");
      const waited = await Promise.race([flushed, new Promise((ok) => setTimeout(() => ok("waiting"), 500))]);
      expect(waited).toBe("waiting");
      expect(publisher.metrics().queued).toBe(10);
      const again = await ReferenceServer.start(dir, server.port);
      cleanup.push(() => again.stop());
      expect(await flushed).toBe("flushed");

      const published = await Promise.all(answers);
      expect(published.filter((p) => p.replayed)).toHaveLength(1); // the retry after the lost answer
      expect(new Set(published.map((p) => p.idempotencyKey)).size).toBe(20);
      expect(published.map((p) => p.offset)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
      const m = publisher.metrics();
      expect([m.published, m.failed, m.queued, m.batches]).toEqual([20, 0, 0, 0]);
      expect(m.retried).toBeGreaterThanOrEqual(4); // 3 faults, at least one attempt during the restart
      expect(proxy.counts().batches).toBe(0);
      const events = await feed(again.origin);
      expect(seqs(events)).toEqual(Array.from({ length: 20 }, (_, i) => i));
      expect(events.map((e) => e.id)).toEqual(published.map((p) => p.id));
      expect(events.map((e) => e.data.metadata.correlationId)).toEqual(Array.from({ length: 20 }, (_, i) => `req-${i}`));
      await publisher.close({ timeoutMs: 10_000 });
    },
    T,
  );

  it(
    "sends a backlog of 500 in batches through a restart, a lost answer and a 503: each event once, in order",
    async () => {
      const { dir, server, proxy } = await setup("batches");
      const publisher = new Publisher<{ "task.created": { seq: number } }>({ url: proxy.origin, apiKey: KEY, backoff: fast });
      await server.stop();
      // Fire and forget (the promises are only read at the end, to count the replays). The first
      // event goes alone; the 499 queued behind it go in batches of 100 once it is through.
      const answers = Array.from({ length: 500 }, (_, seq) => publisher.publish({ room: "tenant:acme" }, "task.created", { seq }));
      // The first batch is handled but its answer lost, its retry gets a 503, and the retry after
      // that is answered from its 100 idempotency keys.
      proxy.faultPath = BATCH_PATH;
      proxy.plan.push("lose-answer", "unavailable");
      await new Promise((ok) => setTimeout(ok, 500));
      expect(publisher.metrics().published).toBe(0);
      const again = await ReferenceServer.start(dir, server.port);
      cleanup.push(() => again.stop());
      await publisher.flush();

      const published = await Promise.all(answers);
      expect(published.filter((p) => p.replayed).map((p) => p.offset)).toEqual(Array.from({ length: 100 }, (_, i) => i + 2));
      expect(published.map((p) => p.offset)).toEqual(Array.from({ length: 500 }, (_, i) => i + 1));
      expect(seqs(await feed(again.origin))).toEqual(Array.from({ length: 500 }, (_, i) => i));
      const { batches, singles } = proxy.counts();
      expect(batches).toBe(7); // 5 batches, one of them sent 3 times
      expect(singles).toBeLessThan(20); // the first event, tried while the server was down
      const m = publisher.metrics();
      expect(m).toMatchObject({ published: 500, failed: 0, queued: 0, batches: 7 });
      expect(m.retried).toBeGreaterThanOrEqual(3);
      await publisher.close({ timeoutMs: 10_000 });
    },
    T,
  );

  it(
    "fails a refused event of a batch only; the others are published in order",
    async () => {
      const { server } = await setup("batch-refused");
      const publisher = new Publisher({ url: server.origin, apiKey: KEY, backoff: fast });
      const answers: Promise<unknown>[] = [];
      for (let seq = 0; seq < 9; seq++) {
        answers.push(publisher.publish({ room: "tenant:acme" }, "task.created", { seq }).catch((e: unknown) => e));
        if (seq === 3) answers.push(publisher.publish({ room: "tenant:acme" }, "not an event!", {}).catch((e: unknown) => e));
        if (seq === 6) answers.push(publisher.publish({ users: ["alice"] }, "task.created", {}).catch((e: unknown) => e));
      }
      const results = await Promise.all(answers);
      expect(results[4]).toBeInstanceOf(PublishRejectedError);
      expect(results[4]).toMatchObject({ status: 400, code: "invalid_event" });
      expect(results[8]).toMatchObject({ status: 400, code: "missing_tenant" });
      const offsets = results.filter((r) => !(r instanceof Error)).map((r) => (r as Published).offset);
      expect(offsets).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
      // The first event alone, the ten behind it in one batch.
      expect(publisher.metrics()).toEqual({ published: 9, retried: 0, failed: 2, queued: 0, batches: 1 });
      expect(seqs(await feed(server.origin))).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    },
    T,
  );

  it(
    "falls back to one request per event, for good, when the server has no batch endpoint (404)",
    async () => {
      const { server, proxy } = await setup("no-batch");
      proxy.noBatch = true;
      const publisher = new Publisher<{ "task.created": { seq: number } }>({ url: proxy.origin, apiKey: KEY, backoff: fast });
      const publish = (from: number, to: number): Promise<Published>[] =>
        Array.from({ length: to - from }, (_, i) => publisher.publish({ room: "tenant:acme" }, "task.created", { seq: from + i }));
      const answers = publish(0, 30);
      await publisher.flush();
      expect(proxy.counts()).toEqual({ batches: 1, singles: 30 }); // the first alone, a batch of 29 refused, each alone
      answers.push(...publish(30, 60));
      await publisher.flush();
      expect(proxy.counts()).toEqual({ batches: 1, singles: 60 });
      await Promise.all(answers);
      expect(publisher.metrics()).toMatchObject({ published: 60, failed: 0, batches: 1 });
      expect(seqs(await feed(server.origin))).toEqual(Array.from({ length: 60 }, (_, i) => i));
    },
    T,
  );

  it(
    "fails a refused event at once (400 bad event name, 403 wrong key) and counts it",
    async () => {
      const { server } = await setup("refused");
      const publisher = new Publisher({ url: server.origin, apiKey: KEY, backoff: fast });
      const bad = await publisher.publish({ room: "tenant:acme" }, "not an event name!", {}).catch((e: unknown) => e);
      expect(bad).toBeInstanceOf(PublishRejectedError);
      expect(bad).toMatchObject({ status: 400, code: "invalid_event" });
      const noTenant = await publisher.publish({ users: ["alice"] }, "task.created", {}).catch((e: unknown) => e);
      expect(noTenant).toMatchObject({ status: 400, code: "missing_tenant" });
      expect(publisher.metrics()).toEqual({ published: 0, retried: 0, failed: 2, queued: 0, batches: 0 });
      const wrong = new Publisher({ url: server.origin, apiKey: "not-the-key", backoff: fast });
      const refused = await wrong.publish({ room: "tenant:acme" }, "task.created", {}).catch((e: unknown) => e);
      expect(refused).toMatchObject({ status: 403, code: "invalid_api_key" });
      expect(String(refused)).not.toContain("not-the-key");
      expect(await feed(server.origin)).toEqual([]);
    },
    T,
  );

  it(
    "publishes to users with a tenant, once per idempotency key given",
    async () => {
      const { server } = await setup("users");
      const publisher = new Publisher({ url: server.origin, apiKey: KEY });
      const opts = { tenantId: "acme", idempotencyKey: "order-42" };
      const first = await publisher.publish({ users: ["alice"] }, "order.paid", { order: 42 }, opts);
      const second = await publisher.publish({ users: ["alice"] }, "order.paid", { order: 42 }, opts);
      expect(second).toEqual({ ...first, replayed: true });
      expect(first.replayed).toBe(false);
      const alice = await feed(server.origin, "alice");
      expect(alice.map((e) => [e.id, e.event])).toEqual([[first.id, "order.paid"]]);
      expect(await feed(server.origin, "bob")).toEqual([]); // for alice only
    },
    T,
  );

  it(
    "close drains what is queued, waiting for a server that comes back",
    async () => {
      const { dir, server, proxy } = await setup("close");
      const publisher = new Publisher<{ "task.created": { seq: number } }>({ url: proxy.origin, apiKey: KEY, backoff: fast });
      await server.stop();
      for (let seq = 0; seq < 5; seq++) void publisher.publish({ room: "tenant:acme" }, "task.created", { seq });
      const closed = publisher.close({ timeoutMs: 30_000 });
      await new Promise((ok) => setTimeout(ok, 300));
      const again = await ReferenceServer.start(dir, server.port);
      cleanup.push(() => again.stop());
      await closed;
      expect(publisher.metrics()).toMatchObject({ published: 5, failed: 0, queued: 0 });
      expect(seqs(await feed(again.origin))).toEqual([0, 1, 2, 3, 4]);
    },
    T,
  );
});
