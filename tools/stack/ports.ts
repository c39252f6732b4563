// Fixed loopback ports for processes that must come back on the same port
// (tests and tools that restart servers): chosen below the kernel's ephemeral
// range, so that the many outbound connections of a busy test run, which take
// their local ports from that range, cannot grab one between the choice and
// the bind. Each is checked free by binding it.
import { readFileSync } from "node:fs";
import net from "node:net";

const FALLBACK_EPHEMERAL_START = 32768;
const LOWEST = 10_000;

function ephemeralStart(): number {
  try {
    const [start] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/).map(Number);
    return Number.isInteger(start) && start > LOWEST + 1000 ? start : FALLBACK_EPHEMERAL_START;
  } catch {
    return FALLBACK_EPHEMERAL_START;
  }
}

const ceiling = ephemeralStart();
const taken = new Set<number>();

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/** A free loopback port outside the ephemeral range, never the same twice in this process. */
export const freePort = (): Promise<number> => freeRange(1);

export async function freePorts(count: number): Promise<number[]> {
  const ports: number[] = [];
  for (let i = 0; i < count; i++) ports.push(await freePort());
  return ports;
}

/** The first of `count` consecutive free loopback ports outside the ephemeral range. */
export async function freeRange(count: number): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const first = LOWEST + Math.floor(Math.random() * (ceiling - LOWEST - count));
    const ports = Array.from({ length: count }, (_, i) => first + i);
    if (ports.some((p) => taken.has(p))) continue;
    const free = await Promise.all(ports.map(bindable));
    if (free.every(Boolean)) {
      for (const p of ports) taken.add(p);
      return first;
    }
  }
  throw new Error(`no ${count === 1 ? "free loopback port" : `${count} consecutive free loopback ports`} found between ${LOWEST} and ${ceiling}`);
}
