// Type-checked against the BUILT declarations (npm/dist/*.d.ts), resolved by package name through
// the `exports` map, as an application would: `tsc -p tsconfig.package.json`.

import { connect, type Socket } from "tidings";
import { createTidingsHooks, TidingsProvider, useConnectionState, useRoom } from "tidings/react";
import {
  type Published,
  type PublisherFetch,
  type PublisherMetrics,
  Publisher,
  PublishError,
  PublishQueueFullError,
  PublishRejectedError,
} from "tidings/publisher";

interface ServerToClient {
  message: (text: string) => void;
}
interface ClientToServer {
  add: (a: number, b: number, ack: (sum: number) => void) => void;
}

const socket: Socket<ServerToClient, ClientToServer> = connect<ServerToClient, ClientToServer>("https://example.test", {
  auth: async () => ({ token: "t" }),
});
const sum: Promise<number> = socket.emitWithAck("add", 1, 2);
socket.on("message", (text: string) => void text);
const hooks = createTidingsHooks<ServerToClient, ClientToServer>();

// A backend service: events typed by an interface; the runtime's own fetch fits the option.
interface TaskEvents {
  "task.created": { id: string; title: string };
  "task.deleted": { id: string };
}
const runtimeFetch: PublisherFetch = fetch;
const publisher = new Publisher<TaskEvents>({ url: "https://api.example.test", apiKey: "k", fetch: runtimeFetch });
const tenantId: string | undefined = undefined as string | undefined; // exactOptionalPropertyTypes
const published: Promise<Published> = publisher.publish({ room: "tenant:acme" }, "task.created", { id: "t1", title: "x" });
void publisher.publish({ users: ["alice"] }, "task.deleted", { id: "t1" }, { tenantId, idempotencyKey: "k1" });
// @ts-expect-error: not an event of TaskEvents
void publisher.publish({ room: "tenant:acme" }, "task.renamed", { id: "t1" });
try {
  void publisher.tryPublish({ room: "tenant:acme" }, "task.deleted", { id: "t2" });
} catch (e) {
  if (e instanceof PublishQueueFullError) void e.capacity;
}
const why = (e: unknown): string =>
  e instanceof PublishRejectedError ? `${e.status} ${e.code ?? ""}` : e instanceof PublishError ? e.kind : "other";
const metrics: PublisherMetrics = publisher.metrics();
const closed: Promise<void> = publisher.flush().then(() => publisher.close({ timeoutMs: 1000 }));

export { closed, hooks, metrics, published, sum, TidingsProvider, useConnectionState, useRoom, why };
