import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { expect, it } from "vitest";
import { readConfig } from "../../services/common/config.js";
import { envoyMismatches, findEnvoy } from "./envoy.js";

it("finds an executable envoy on PATH, and nothing where there is none", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "envoy-path-"));
  try {
    expect(findEnvoy(dir)).toBeUndefined();
    fs.writeFileSync(path.join(dir, "envoy"), "#!/bin/sh\n", { mode: 0o644 });
    expect(findEnvoy(dir)).toBeUndefined(); // not executable
    fs.chmodSync(path.join(dir, "envoy"), 0o755);
    expect(findEnvoy(`/nonexistent${path.delimiter}${dir}`)).toBe(path.join(dir, "envoy"));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

it("runs Envoy only when the stack uses the ports envoy.local.yaml routes to", () => {
  expect(envoyMismatches(readConfig({}))).toEqual([]);
  expect(envoyMismatches(readConfig({ FLASH_ORDER_ADDR: "127.0.0.1:6000" }))).toEqual(["FLASH_ORDER_ADDR=127.0.0.1:6000 (envoy.local.yaml routes to 127.0.0.1:50056)"]);
});
