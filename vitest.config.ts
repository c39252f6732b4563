import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

export default defineConfig({
  resolve: {
    // The workspace SDK from its TypeScript source, as tsconfig.json's paths give tsc and tsx.
    alias: [{ find: /^@seckill\/sdk$/, replacement: fileURLToPath(new URL("./sdk/src/index.ts", import.meta.url)) }],
  },
  test: {
    include: [
      "services/**/*.test.ts",
      "gateway/**/*.test.ts",
      "envoy/**/*.test.ts",
      "sdk/**/*.test.ts",
      "sdk-python/**/*.test.ts",
      "cli/**/*.test.ts",
      "bench/**/*.test.ts",
      "tools/**/*.test.ts",
      "k8s/**/*.test.ts",
      "test/**/*.test.ts",
    ],
    // Finds or starts Redis, Postgres and NATS once for the whole run.
    globalSetup: ["test/support/global-setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration files each start their own stack; two at a time suits a 2-core machine.
    pool: "forks",
    maxWorkers: 2,
  },
});
