// Envoy in front of the local stack (`npm start`): the local variant of the
// generated edge config, envoy/envoy.local.yaml, whose upstreams are the
// default ports. The binary comes from tools/envoy/binary.ts.
import type { Config } from "../../services/common/config.js";
import { LOCAL_TOPOLOGY, type HostPort } from "../../envoy/src/topology.js";
import type { Program } from "./children.js";

export const ENVOY_LOCAL_CONFIG = "envoy/envoy.local.yaml";

/** Envoy as npm start runs it: with envoy.local.yaml, or another bootstrap file (tests). */
export const envoyProgram = (bin: string, config = ENVOY_LOCAL_CONFIG): Program => ({ command: bin, args: ["-c", config, "--disable-hot-restart", "--log-level", "warn"] });

const show = (h: HostPort) => `${h.host}:${h.port}`;

/** Where the stack's addresses differ from those envoy.local.yaml routes to; empty when they match. */
export function envoyMismatches(config: Config): string[] {
  const c = LOCAL_TOPOLOGY.clusters;
  const expected: [string, string, HostPort][] = [
    ["INVENTORY_ADDR", config.inventoryAddr, c.inventory_default],
    ["ORDER_ADDR", config.orderAddr, c.order_default],
    ["FLASH_INVENTORY_ADDR", config.flashInventoryAddr, c.inventory_flash],
    ["FLASH_ORDER_ADDR", config.flashOrderAddr, c.order_flash],
    ["GATEWAY_ADDR", config.gatewayAddr, c.gateway],
    ["GATEWAY_JWKS_ADDR", config.gatewayJwksAddr, c.gateway_jwks],
  ];
  return expected.filter(([, actual, want]) => actual !== show(want)).map(([name, actual, want]) => `${name}=${actual} (envoy.local.yaml routes to ${show(want)})`);
}

export const envoyListener = (): string => show(LOCAL_TOPOLOGY.listener);
