// `tidings/publisher` in a Node service that has Node's types and no DOM library: its declarations
// need nothing from the browser. Type-checked by `npm run test:package` (tsconfig.package-node.json).

import { Publisher, type PublisherFetch } from "tidings/publisher";

const nodeFetch: PublisherFetch = fetch;
const publisher = new Publisher<{ "order.paid": { order: number } }>({
  url: process.env["TIDINGS_URL"] ?? "http://127.0.0.1:3000",
  apiKey: process.env["TIDINGS_API_KEY"] ?? "",
  fetch: nodeFetch,
});
const done: Promise<void> = publisher
  .publish({ users: ["alice"] }, "order.paid", { order: 42 }, { tenantId: "acme", idempotencyKey: "order-42" })
  .then(() => publisher.close({ timeoutMs: 10_000 }));

export { done };
