// `npm run build`: bundles each service into one ES module in dist/ (the SDK
// and project code inlined, npm packages left as imports), so the services run
// on plain node without a TypeScript loader: faster start, less memory.
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

export const SERVICE_BUNDLES = {
  inventory: "services/inventory/main.ts",
  order: "services/order/main.ts",
  "order-writer": "services/order/writer/main.ts",
  gateway: "gateway/main.ts",
} as const;

export type ServiceName = keyof typeof SERVICE_BUNDLES;

/** One-shot tools shipped in the image beside the services (the migration Job runs dist/migrate.mjs). */
export const TOOL_BUNDLES = {
  migrate: "tools/migrate.ts",
} as const;

export const bundlePath = (name: ServiceName): string => `${ROOT}dist/${name}.mjs`;

export async function buildServices(): Promise<void> {
  await bundle(
    Object.entries({ ...SERVICE_BUNDLES, ...TOOL_BUNDLES }).map(([out, in_]) => ({ in: in_, out })),
    "dist",
  );
}

/** Bundles entry points (paths from the repository root) into outdir/<out>.mjs. */
export async function bundle(entryPoints: { in: string; out: string }[], outdir: string): Promise<void> {
  await build({
    absWorkingDir: ROOT,
    entryPoints,
    outdir,
    outExtension: { ".js": ".mjs" },
    bundle: true,
    platform: "node",
    target: "node20",
    format: "esm",
    // npm packages stay imports (resolved from node_modules); the workspace SDK is project code.
    packages: "external",
    plugins: [
      {
        name: "bundle-sdk",
        setup(b) {
          b.onResolve({ filter: /^@seckill\/sdk$/ }, () => ({ path: `${ROOT}sdk/src/index.ts` }));
        },
      },
    ],
    sourcemap: "linked",
    logLevel: "warning",
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await buildServices();
  console.log(
    `built ${Object.keys({ ...SERVICE_BUNDLES, ...TOOL_BUNDLES })
      .map((n) => `dist/${n}.mjs`)
      .join(", ")}`,
  );
}
