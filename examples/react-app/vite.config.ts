import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// `tidings` is linked from ../../npm (its built dist/). That folder has its own node_modules with
// React in it (for its tests), so React is de-duplicated here: the app and tidings/react must use
// the same copy.
export default defineConfig({
  plugins: [react()],
  resolve: { dedupe: ["react", "react-dom"] },
  // The wasm module is fetched by the glue with `new URL(..., import.meta.url)`; keep it out of
  // the dependency pre-bundling so that URL stays valid in `vite dev`.
  optimizeDeps: { exclude: ["tidings"] },
  server: {
    // `npm run dev` against a server on :3000 started with --cors-origin not needed: proxy instead.
    proxy: {
      "/api": "http://127.0.0.1:3000",
      "/socket.io": { target: "ws://127.0.0.1:3000", ws: true },
    },
  },
  build: { outDir: "dist", emptyOutDir: true, target: "es2022" },
});
