// The RPC groups `npm start` runs: the same inventory and order services as
// the default group and as the dedicated flash-sale group, each with its own
// processes, ports, limits and pools.

/**
 * The flash-sale group's own settings: every FLASH_GROUP_<VAR> in the
 * environment is <VAR> for the flash-sale group's processes only, e.g.
 * FLASH_GROUP_MAX_IN_FLIGHT=1024 FLASH_GROUP_DB_POOL_MAX=4.
 */
export function flashOverrides(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    if (key.startsWith(PREFIX) && key.length > PREFIX.length && value !== undefined) out[key.slice(PREFIX.length)] = value;
  }
  return out;
}

const PREFIX = "FLASH_GROUP_";
