// `npm run build:cli` (and the CLI package's build and prepack): bundles the
// seckill command into cli/dist/seckill.mjs for plain node (project code, the
// SDK and any envoy/src constants inlined, npm packages left as imports), then
// checks that the packages the bundle imports are exactly the dependencies
// cli/package.json declares: an installed CLI would crash on an undeclared one.
import { readFileSync, rmSync } from "node:fs";
import { builtinModules } from "node:module";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { bundle } from "./build.js";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const CLI_DIST = `${ROOT}cli/dist`;

export const CLI_BUNDLE = `${CLI_DIST}/seckill.mjs`;

/** Builds cli/dist afresh: nothing from an earlier build is left to be packed. */
export async function buildCli(): Promise<void> {
  rmSync(CLI_DIST, { recursive: true, force: true });
  await bundle([{ in: "cli/src/main.ts", out: "seckill" }], "cli/dist");
}

/** The npm packages a bundled file imports, statically or dynamically (package names, node's built-ins left out). */
export async function importedPackages(file: string): Promise<string[]> {
  const { metafile } = await build({
    entryPoints: [file],
    bundle: true,
    write: false,
    metafile: true,
    packages: "external",
    platform: "node",
    format: "esm",
    logLevel: "silent",
  });
  const builtins = new Set(builtinModules);
  const names = Object.values(metafile.inputs)
    .flatMap((input) => input.imports)
    .filter((i) => i.external && !i.path.startsWith("node:") && !builtins.has(i.path.split("/")[0]))
    .map((i) =>
      i.path
        .split("/")
        .slice(0, i.path.startsWith("@") ? 2 : 1)
        .join("/"),
    );
  return [...new Set(names)].sort();
}

/** What differs between the packages a bundle imports and the dependencies of a package.json. */
export function dependencyMismatch(imported: string[], manifestPath: string): { undeclared: string[]; unused: string[] } {
  const declared = Object.keys((JSON.parse(readFileSync(manifestPath, "utf8")) as { dependencies?: Record<string, string> }).dependencies ?? {});
  return { undeclared: imported.filter((p) => !declared.includes(p)), unused: declared.filter((p) => !imported.includes(p)) };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await buildCli();
  const { undeclared, unused } = dependencyMismatch(await importedPackages(CLI_BUNDLE), `${ROOT}cli/package.json`);
  if (undeclared.length > 0 || unused.length > 0) {
    console.error(
      `cli/package.json "dependencies" do not match what cli/dist/seckill.mjs imports: ` +
        [undeclared.length > 0 ? `undeclared ${undeclared.join(", ")}` : "", unused.length > 0 ? `not imported ${unused.join(", ")}` : ""].filter(Boolean).join("; "),
    );
    process.exit(1);
  }
  console.log("built cli/dist/seckill.mjs");
}
