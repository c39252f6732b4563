// `seckill chaos` runs the repository's `npm run chaos` with the same arguments and exit code.
import { expect, it } from "vitest";
import { chaosInvocation } from "./chaos-command.js";
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
