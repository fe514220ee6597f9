import { defineConfig } from "vitest/config";

// Hook unit tests in jsdom; test/publisher/ in Node (`@vitest-environment node`), its end-to-end
// tests against the reference server's binary. test/browser/ (real browser, Playwright) and
// test/package/ (the built package, `npm run test:package`) run separately.
export default defineConfig({
  // The driver needs the built .wasm (dist/ after a build): unit tests get a stub (and mock it).
  resolve: {
    alias: [{ find: /^.*\/wasm\/tidings_wasm\.js$/, replacement: new URL("./test/wasm-stub.ts", import.meta.url).pathname }],
  },
  test: {
    environment: "jsdom",
    include: ["test/**/*.test.{ts,tsx}"],
    exclude: ["test/browser/**", "test/package/**", "node_modules/**", "dist/**"],
    // Two cores: one worker is enough for a few hundred milliseconds of tests.
    maxWorkers: 1,
    restoreMocks: true,
  },
});
