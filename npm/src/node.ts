// `tidings` on Node (the package's "node" export condition): the same API as in the browser.
// Node's `fetch` cannot read the `file:` URL the driver would fetch the WebAssembly module from, so it is
// read from the package's own directory and handed to `init()` before anything else runs.

import { init } from "./index.js";

export * from "./index.js";

// Typed by hand: the package does not depend on @types/node.
type Fs = { readFile(path: URL): Promise<Uint8Array> };
const fs = (await import("node:fs/promises" as string)) as Fs;
await init(await fs.readFile(new URL("./wasm/tidings_wasm_bg.wasm", import.meta.url)));
