// The protobuf descriptor set that the grpc_json_transcoder filter reads: the
// transcoded services of proto/ with the files they need (google.api.http
// included) and the google.rpc error types of refusals (DESCRIPTOR_TYPES),
// built by `buf build proto --type …` into envoy/seckill.pb. Only a change to
// those files (sale.proto, its imports, google/rpc) makes it stale.

import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { DESCRIPTOR_TYPES } from "./filters.js";

export const DESCRIPTOR_FILE = "envoy/seckill.pb";
const root = resolve(import.meta.dirname, "../..");

/** Builds the descriptor set with the buf of node_modules (no source info: stable bytes). */
export function buildDescriptorSet(): Buffer {
  const dir = mkdtempSync(join(tmpdir(), "seckill-descriptor-"));
  try {
    const out = join(dir, "seckill.pb");
    const buf = resolve(root, "node_modules/.bin/buf");
    const run = spawnSync(buf, ["build", "proto", "--exclude-source-info", ...DESCRIPTOR_TYPES.flatMap((t) => ["--type", t]), "-o", out], { cwd: root, encoding: "utf8" });
    if (run.status !== 0) throw new Error(`buf build proto failed: ${run.stderr || run.error?.message}`);
    return readFileSync(out);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
