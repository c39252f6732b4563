// What the tests of `npm start` share: run the real tools/stack/start.ts with
// an environment, on its own free ports (never the default ones, so a stack
// someone runs by hand is not disturbed), and read its output.
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { freePorts, freeRange } from "./ports.js";

const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));

export interface Started {
  child: ChildProcess;
  output: () => string;
  exit: Promise<number | null>;
}

export function startStack(env: Record<string, string>): Started {
  // npm start's own choice of purchase-token settings is under test: none inherited.
  const { PURCHASE_TOKEN_REQUIRED: _required, PURCHASE_TOKEN_JWKS_URL: _jwks, ...inherited } = process.env;
  const child = spawn(process.execPath, ["--import", "tsx", "tools/stack/start.ts"], {
    cwd: REPO_ROOT,
    env: { ...inherited, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let text = "";
  child.stdout!.on("data", (chunk) => (text += chunk));
  child.stderr!.on("data", (chunk) => (text += chunk));
  const exit = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, output: () => text, exit };
}

/** Waits until the output from offset `from` on matches `pattern`. */
export async function waitForOutput(stack: Started, pattern: RegExp, timeoutMs: number, from = 0): Promise<RegExpMatchArray> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  void stack.exit.then(() => (exited = true));
  for (;;) {
    const match = stack.output().slice(from).match(pattern);
    if (match) return match;
    if (exited || Date.now() > deadline) {
      throw new Error(`${exited ? "exited" : "timed out"} before ${pattern}; output:\n${stack.output()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([promise, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms))]);
}

/** Whether a process runs: a zombie (dead, not yet reaped by its new parent) does not. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    // /proc/<pid>/stat: "pid (comm) state …"; the comm may hold spaces and parentheses.
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false; // gone between the two looks
  }
}

export interface StackPorts {
  addrs: { inventory: string; order: string; writer: string; flashInventory: string; flashOrder: string; gateway: string };
  jwksPort: number;
  /** The first of the six consecutive metrics ports. */
  metricsPort: number;
  /** Every address of the stack, for its environment. */
  env: Record<string, string>;
}

/** Free loopback ports for every address npm start listens on. */
export async function stackPorts(): Promise<StackPorts> {
  const [inventoryPort, orderPort, writerPort, flashInventoryPort, flashOrderPort, gatewayPort, jwksPort] = await freePorts(7);
  const metricsPort = await freeRange(6);
  const addrs = {
    inventory: `127.0.0.1:${inventoryPort}`,
    order: `127.0.0.1:${orderPort}`,
    writer: `127.0.0.1:${writerPort}`,
    flashInventory: `127.0.0.1:${flashInventoryPort}`,
    flashOrder: `127.0.0.1:${flashOrderPort}`,
    gateway: `127.0.0.1:${gatewayPort}`,
  };
  return {
    addrs,
    jwksPort,
    metricsPort,
    env: {
      INVENTORY_ADDR: addrs.inventory,
      ORDER_ADDR: addrs.order,
      WRITER_ADDR: addrs.writer,
      FLASH_INVENTORY_ADDR: addrs.flashInventory,
      FLASH_ORDER_ADDR: addrs.flashOrder,
      GATEWAY_ADDR: addrs.gateway,
      GATEWAY_JWKS_ADDR: `127.0.0.1:${jwksPort}`,
      METRICS_ADDR: `127.0.0.1:${metricsPort}`,
    },
  };
}
