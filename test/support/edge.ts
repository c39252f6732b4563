// A real Envoy for one test file: the edge's bootstrap built by envoy/src from
// the local topology, with the upstream clusters and limits the test chooses,
// on ports chosen by the OS, admin on loopback. Envoy's binary is the one the
// project installs (test/support/envoy.ts).
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { stringify } from "yaml";
import { buildBootstrap } from "../../envoy/src/bootstrap.js";
import type { EdgeLimits } from "../../envoy/src/limits.js";
import { LOCAL_LIMITS } from "../../envoy/src/limits.js";
import { LOCAL_TOPOLOGY, type ClusterName, type HostPort, type Topology } from "../../envoy/src/topology.js";
import { freePorts } from "../../tools/stack/ports.js";
import { eventually } from "../../tools/stack/fixtures.js";

export const loopback = (port: number): HostPort => ({ host: "127.0.0.1", port });

export interface EdgeOptions {
  /** Every cluster's upstream; a cluster left out points at a closed port. */
  clusters: Partial<Record<ClusterName, HostPort>>;
  limits?: Partial<EdgeLimits>;
  /** Edits the built bootstrap before it is written (for a config Envoy must refuse, say). */
  edit?: (bootstrap: ReturnType<typeof buildBootstrap>) => unknown;
}

export interface Edge {
  process: ChildProcess;
  /** "127.0.0.1:<port>": where clients dial the edge. */
  address: string;
  port: number;
  adminPort: number;
  /** Everything Envoy printed so far. */
  output: string[];
  /** A counter or gauge of Envoy's admin /stats (0 when Envoy has none by that name). */
  stat(name: string): Promise<number>;
  stop(): Promise<void>;
}

export async function startEdge(bin: string, options: EdgeOptions): Promise<Edge> {
  const [port, adminPort, closedPort] = await freePorts(3);
  const clusters = Object.fromEntries(
    (Object.keys(LOCAL_TOPOLOGY.clusters) as ClusterName[]).map((name) => [name, options.clusters[name] ?? loopback(closedPort)]),
  ) as Record<ClusterName, HostPort>;
  const topology: Topology = {
    ...LOCAL_TOPOLOGY,
    protoDescriptor: resolve(import.meta.dirname, "../../envoy/seckill.pb"),
    listener: loopback(port),
    admin: loopback(adminPort),
    clusters,
    limits: { ...LOCAL_LIMITS, ...options.limits },
  };
  const dir = mkdtempSync(join(tmpdir(), "seckill-edge-"));
  const file = join(dir, "envoy.yaml");
  const bootstrap = buildBootstrap(topology);
  writeFileSync(file, stringify(options.edit?.(bootstrap) ?? bootstrap));
  const output: string[] = [];
  const child = spawn(bin, ["-c", file, "--disable-hot-restart", "--log-level", "warn"], { stdio: ["ignore", "pipe", "pipe"] });
  child.stdout!.on("data", (d) => output.push(String(d)));
  child.stderr!.on("data", (d) => output.push(String(d)));
  const exited = new Promise<void>((r) => child.once("exit", () => r()));

  const admin = `http://127.0.0.1:${adminPort}`;
  const edge: Edge = {
    process: child,
    address: `127.0.0.1:${port}`,
    port,
    adminPort,
    output,
    async stat(name) {
      const text = await (await fetch(`${admin}/stats?filter=${encodeURIComponent(`^${name.replace(/\./g, "\\.")}$`)}`)).text();
      const value = /: (\d+)/.exec(text)?.[1];
      return value === undefined ? 0 : Number(value);
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await eventually(async () => {
      if (child.exitCode !== null) throw new Error(`envoy exited with ${child.exitCode}:\n${output.join("")}`);
      const ready = await fetch(`${admin}/ready`).then((r) => r.ok, () => false);
      return ready;
    }, 20_000, "envoy to be ready");
  } catch (error) {
    await edge.stop();
    throw error;
  }
  return edge;
}
