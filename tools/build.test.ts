// The image installs only the root package's "dependencies" (npm ci
// --omit=dev --workspaces=false) beside the service bundles: every package a
// bundle imports must be one of them, and nothing else (no build tools) may be.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { SERVICE_BUNDLES, TOOL_BUNDLES, bundle } from "./build.js";
import { dependencyMismatch, importedPackages } from "./build-cli.js";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const outdir = mkdtempSync(join(tmpdir(), "seckill-bundles-"));
afterAll(() => rmSync(outdir, { recursive: true, force: true }));

describe("the service bundles", () => {
  it("import exactly the root package's dependencies: no undeclared package, no build tool at run time", async () => {
    const entries = Object.entries({ ...SERVICE_BUNDLES, ...TOOL_BUNDLES }).map(([out, path]) => ({ in: path, out }));
    await bundle(entries, outdir);
    const imported = [...new Set((await Promise.all(entries.map((e) => importedPackages(join(outdir, `${e.out}.mjs`))))).flat())].sort();
    expect(imported).toContain("@grpc/grpc-js");
    expect(dependencyMismatch(imported, join(ROOT, "package.json"))).toEqual({ undeclared: [], unused: [] });
  });
});
