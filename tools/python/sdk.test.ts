import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, expect, it } from "vitest";
import { ensurePythonSdk, PythonSdkUnavailableError } from "./sdk.js";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

it("without python3, says what it needs instead of installing", () => {
  const empty = fs.mkdtempSync(path.join(os.tmpdir(), "python-sdk-"));
  dirs.push(empty);
  const venv = path.join(empty, "venv");
  expect(() => ensurePythonSdk(undefined, { pathVar: empty, venv })).toThrow(PythonSdkUnavailableError);
  expect(() => ensurePythonSdk(undefined, { pathVar: empty, venv })).toThrow(/no python3 to create the Python SDK's environment/);
  expect(fs.existsSync(venv)).toBe(false);
  expect(fs.existsSync(`${venv}.lock`)).toBe(false);
});
