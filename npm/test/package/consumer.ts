// Type-checked against the BUILT declarations (npm/dist/*.d.ts), resolved by package name through
// the `exports` map, as an application would: `tsc -p tsconfig.package.json`.

import { connect, type Socket } from "tidings";
import { createTidingsHooks, TidingsProvider, useConnectionState, useRoom } from "tidings/react";

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

export { hooks, sum, TidingsProvider, useConnectionState, useRoom };
