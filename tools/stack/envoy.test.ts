import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { expect, it } from "vitest";
import { readConfig } from "../../services/common/config.js";
import { findEnvoy } from "../envoy/binary.js";
import { envoyMismatches } from "./envoy.js";

it("finds an executable envoy on PATH, else the installed one, and nothing where there is none", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "envoy-path-"));
  const venvEnvoy = path.join(dir, "venv-envoy");
  try {
    expect(findEnvoy({ pathVar: dir, venvEnvoy })).toBeUndefined();
    fs.writeFileSync(path.join(dir, "envoy"), "#!/bin/sh\n", { mode: 0o644 });
    expect(findEnvoy({ pathVar: dir, venvEnvoy })).toBeUndefined(); // not executable
    fs.writeFileSync(venvEnvoy, "#!/bin/sh\n", { mode: 0o755 });
    expect(findEnvoy({ pathVar: dir, venvEnvoy })).toBe(venvEnvoy);
    fs.chmodSync(path.join(dir, "envoy"), 0o755);
    expect(findEnvoy({ pathVar: `/nonexistent${path.delimiter}${dir}`, venvEnvoy })).toBe(path.join(dir, "envoy"));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

it("runs Envoy only when the stack uses the ports envoy.local.yaml routes to", () => {
  expect(envoyMismatches(readConfig({}))).toEqual([]);
  expect(envoyMismatches(readConfig({ FLASH_ORDER_ADDR: "127.0.0.1:6000" }))).toEqual(["FLASH_ORDER_ADDR=127.0.0.1:6000 (envoy.local.yaml routes to 127.0.0.1:50056)"]);
});
