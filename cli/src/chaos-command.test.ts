// `seckill chaos` runs the repository's `npm run chaos` with the same arguments and exit code.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { expect, it } from "vitest";
import { NEEDS_CHECKOUT, chaosInvocation, runChaos } from "./chaos-command.js";
import { runCli } from "./program.js";

const io = { out: () => undefined, err: () => undefined, stderr: { write: () => true } };

it("passes its arguments on to npm run chaos at the repository root", () => {
  const run = chaosInvocation(["--seed", "7", "--runs", "2", "--json"]);
  expect(run.args).toEqual(["run", "--silent", "chaos", "--", "--seed", "7", "--runs", "2", "--json"]);
  expect(run.cwd).toMatch(/\/$/);
});

it("exits as the campaign does: 0 for --help, 2 for a bad option", { timeout: 30_000 }, async () => {
  expect(await runCli(["chaos", "--help"], io)).toBe(0);
  expect(await runCli(["chaos", "--runs", "0"], io)).toBe(2);
});

it("says it needs a checkout of the repository, and exits 1, where there is none", async () => {
  // An installed package: a package.json above it, but not the repository's (no chaos script).
  const installed = mkdtempSync(path.join(tmpdir(), "seckill-chaos-"));
  try {
    writeFileSync(path.join(installed, "package.json"), JSON.stringify({ name: "shop", scripts: { test: "true" } }));
    for (const root of [installed, path.join(installed, "nothing-here")]) {
      const err: string[] = [];
      expect(await runChaos(["--runs", "1"], { ...io, err: (t) => err.push(t) }, root)).toBe(1);
      expect(err).toEqual([NEEDS_CHECKOUT]);
    }
  } finally {
    rmSync(installed, { recursive: true, force: true });
  }
});
