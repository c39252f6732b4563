// What the processes cost, read from /proc: resident memory (VmRSS, sampled
// every 500 ms while a figure runs) and CPU time (utime + stime, at the start
// and end of a run), to show where the time goes.
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";

const CLOCK_TICKS = 100; // USER_HZ on Linux

/** VmRSS of a process in MB; undefined when it is gone or /proc is not there. */
export function rssMb(pid: number): number | undefined {
  try {
    const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** CPU seconds (user + system) a process has used; 0 when it is gone. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" "); // fields[0] is field 3 (state)
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}

/** CPU seconds the whole machine has been busy (all cores; /proc/stat less idle and iowait). */
export function machineBusySeconds(): number {
  try {
    const [, ...ticks] = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/);
    const [user, nice, system, , , irq, softirq, steal] = ticks.map(Number);
    return (user + nice + system + irq + softirq + (steal || 0)) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}

/** Pids of the processes named exactly `name` (pgrep -x), for reading their stats. */
export function pidsNamed(name: string): number[] {
  try {
    return execFileSync("pgrep", ["-x", name], { encoding: "utf8" }).trim().split("\n").filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/**
 * The pid of the process listening on a local TCP port (from /proc/net/tcp
 * and the processes' open sockets), or undefined when none is found or their
 * descriptors cannot be read: which server of a kind a stack uses, when
 * several of that kind run on the machine.
 */
export function pidListeningOn(port: number): number | undefined {
  const LISTEN = "0A";
  const inodes = new Set<string>();
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text = "";
    try {
      text = readFileSync(table, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length > 9 && cols[3] === LISTEN && Number.parseInt(cols[1].split(":")[1], 16) === port) inodes.add(cols[9]);
    }
  }
  if (inodes.size === 0) return undefined;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${entry}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${entry}/fd/${fd}`));
        if (match && inodes.has(match[1])) return Number(entry);
      } catch {
        // the descriptor closed meanwhile
      }
    }
  }
  return undefined;
}

export interface RssSeries {
  start: number;
  max: number;
  end: number;
  samples: number;
}

/** Samples each pid every intervalMs until stop(); the MB series per name. */
export function sampleRss(pids: Record<string, number>, intervalMs = 500): { stop(): Record<string, number[]> } {
  const series: Record<string, number[]> = Object.fromEntries(Object.keys(pids).map((name) => [name, []]));
  const sample = () => {
    for (const [name, pid] of Object.entries(pids)) {
      const mb = rssMb(pid);
      if (mb !== undefined) series[name].push(mb);
    }
  };
  sample();
  const timer = setInterval(sample, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      sample();
      return series;
    },
  };
}

export function summarizeRss(samples: number[]): RssSeries | undefined {
  if (samples.length === 0) return undefined;
  // "start" is what the process held once warm: the largest sample of the first quarter of the load.
  const warm = samples.slice(0, Math.max(1, Math.ceil(samples.length / 4)));
  return { start: Math.max(...warm), max: Math.max(...samples), end: samples[samples.length - 1], samples: samples.length };
}

/**
 * CPU seconds each group of processes used between start and stop(), plus
 * `wall` and `machine` (the whole machine's busy CPU seconds). A group is
 * listed again at stop (Postgres starts backends), so processes that ended in
 * between are missed: an approximation, good enough to see who is busy.
 */
export async function meterCpu(groups: Record<string, () => number[] | Promise<number[]>>): Promise<{ stop(): Promise<Record<string, number>> }> {
  const before = new Map<number, number>();
  for (const list of Object.values(groups)) for (const pid of await list()) before.set(pid, cpuSeconds(pid));
  const started = performance.now();
  const machine = machineBusySeconds();
  return {
    async stop() {
      const used: Record<string, number> = { wall: (performance.now() - started) / 1000, machine: machineBusySeconds() - machine };
      for (const [name, list] of Object.entries(groups)) {
        used[name] = (await list()).reduce((sum, pid) => sum + Math.max(0, cpuSeconds(pid) - (before.get(pid) ?? 0)), 0);
      }
      return used;
    },
  };
}
