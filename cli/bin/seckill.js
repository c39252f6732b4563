#!/usr/bin/env node
// In a checkout, src/ sits next to this file: run the TypeScript source through
// tsx (a dependency of the repository), with the repository's tsconfig.json
// whatever the working directory, so the SDK is its source too. The command is
// then always the code as it is: a cli/dist/ or sdk/dist/ left by an earlier
// build never stands in for it. The installed package ships dist/ (bundled at
// prepack) and no src/: there the bundle runs on plain node.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const source = new URL("../src/main.ts", import.meta.url);
if (existsSync(source)) {
  const { register } = await import("tsx/esm/api");
  register({ tsconfig: fileURLToPath(new URL("../../tsconfig.json", import.meta.url)) });
  await import(source.href);
} else {
  await import("../dist/seckill.mjs");
}
