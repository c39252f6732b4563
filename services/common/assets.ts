// Files the services read at run time: the .proto contract (for reflection)
// and the Lua scripts. They are found from the repository root, located by
// walking up from this module, so the same code works from the TypeScript
// sources and from a bundle in dist/.
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

function findRoot(start: string): string {
  for (let dir = start; ; dir = dirname(dir)) {
    if (existsSync(join(dir, "proto", "seckill", "v1"))) return dir;
    if (dirname(dir) === dir) throw new Error(`no proto/seckill/v1 directory above ${start}`);
  }
}

export const ROOT = findRoot(dirname(fileURLToPath(import.meta.url)));

export const assetPath = (...parts: string[]): string => join(ROOT, ...parts);
