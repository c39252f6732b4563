// Envoy's API protos, as shipped in the npm package @grpc/grpc-js-xds
// (deps/envoy-api, with its xds, protoc-gen-validate and googleapis
// dependencies), loaded once into one protobufjs Root: the bootstrap and every
// v3 config and extension message whose imports the package ships. The few
// files that import protos the package lacks (OpenCensus, OpenTelemetry and
// Prometheus tracers and sinks, which the edge does not use) are left out, so a
// config naming one of their types fails as an unknown type URL.

import { existsSync, readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative } from "node:path";
import protobuf from "protobufjs";

const require = createRequire(import.meta.url);
const xdsDeps = join(dirname(require.resolve("@grpc/grpc-js-xds/package.json")), "deps");
const envoyApi = join(xdsDeps, "envoy-api");
const INCLUDE = [
  envoyApi,
  join(xdsDeps, "xds"),
  join(xdsDeps, "protoc-gen-validate"),
  join(xdsDeps, "googleapis"),
  // google/protobuf/descriptor.proto, imported by the validate and annotation options.
  dirname(require.resolve("protobufjs/package.json")),
];

export const BOOTSTRAP_TYPE = "envoy.config.bootstrap.v3.Bootstrap";

function locate(file: string): string | undefined {
  for (const dir of INCLUDE) {
    const candidate = join(dir, file);
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

/** The imports of `file` (transitively) that no include directory has. */
function missingImports(file: string, seen: Set<string>): string[] {
  if (seen.has(file) || file in protobuf.common) return [];
  seen.add(file);
  const path = locate(file);
  if (!path) return [file];
  const source = readFileSync(path, "utf8");
  return [...source.matchAll(/^import\s+(?:public\s+|weak\s+)?"([^"]+)";/gm)].flatMap((m) => missingImports(m[1], seen));
}

function v3Files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return v3Files(path);
    return path.endsWith(".proto") && path.includes("/v3/") ? [relative(envoyApi, path)] : [];
  });
}

let cached: protobuf.Root | undefined;

/** Envoy's v3 API, every file whose imports are shipped (the few that import an unshipped file are left out). */
export function loadApiProtos(): protobuf.Root {
  if (cached) return cached;
  const files = v3Files(join(envoyApi, "envoy")).filter((file) => missingImports(file, new Set()).length === 0);
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => locate(target) ?? target;
  root.loadSync(files, { keepCase: true });
  root.resolveAll();
  cached = root;
  return root;
}
