// The restart policy of `npm start` on a clock of the test's own: backoff
// delays, their reset, giving up on a process that keeps failing at start, the
// ready timeout, and no restart once stopping.
import { describe, expect, it } from "vitest";
import { Backoff, DEFAULT_POLICY, Supervisor, type Run, type Timers } from "./supervisor.js";

/** Timers that fire only when the test moves the clock. */
class FakeClock implements Timers {
  private t = 0;
  private nextId = 1;
  private pending: { at: number; id: number; fn: () => void }[] = [];

  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.pending.push({ at: this.t + ms, id, fn });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.pending = this.pending.filter((p) => p.id !== handle);
  }
  /** Moves the clock by ms, firing what falls due in order (and what the promises they settle do). */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      await settle();
      const due = this.pending.filter((p) => p.at <= end).sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (!due) break;
      this.pending = this.pending.filter((p) => p !== due);
      this.t = due.at;
      due.fn();
    }
    this.t = end;
    await settle();
  }
}

const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

interface FakeRun extends Run {
  end(how: string): void;
}

function fakeRun(pid: number, lines: string[]): FakeRun {
  let resolve!: (how: string) => void;
  const exited = new Promise<string>((r) => (resolve = r));
  let alive = true;
  const end = (how: string) => {
    if (!alive) return;
    alive = false;
    resolve(how);
  };
  return {
    pid,
    exited,
    running: () => alive,
    async stop() {
      end("exit code 0");
      await exited;
    },
    kill: () => end("signal SIGKILL"),
    lastLines: () => lines,
    end,
  };
}

/** A Supervisor over fake runs whose readiness the test decides. */
function harness(policy: Partial<typeof DEFAULT_POLICY> = {}) {
  const clock = new FakeClock();
  const runs: FakeRun[] = [];
  const readiness: ((ready: boolean) => void)[] = [];
  const logs: string[] = [];
  const giveUps: string[] = [];
  const supervisor = new Supervisor({
    name: "order-writer",
    readyAs: "SERVING on 127.0.0.1:50053",
    spawn: () => {
      const run = fakeRun(1000 + runs.length, [`line of run ${runs.length + 1}`, "Error: boom"]);
      runs.push(run);
      return run;
    },
    ready: () => new Promise<boolean>((resolve) => readiness.push(resolve)),
    log: (line) => logs.push(line),
    giveUp: (message) => giveUps.push(message),
    policy,
    timers: clock,
  });
  return {
    clock,
    runs,
    logs,
    giveUps,
    supervisor,
    /** The latest run reports ready. */
    ready: async () => {
      readiness[runs.length - 1](true);
      await settle();
    },
    last: () => runs[runs.length - 1],
  };
}

describe("Backoff", () => {
  it("doubles the delay from 0.5 s to a 10 s cap and counts the restarts", () => {
    const backoff = new Backoff();
    const delays = Array.from({ length: 8 }, () => backoff.ended(1000, true));
    expect(delays.map((d) => (d.restart ? d.delayMs : "gave up"))).toEqual([500, 1000, 2000, 4000, 8000, 10_000, 10_000, 10_000]);
    expect(delays.map((d) => (d.restart ? d.restarts : 0))).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it("goes back to 0.5 s after a run that lasted a minute", () => {
    const backoff = new Backoff();
    for (let i = 0; i < 4; i++) backoff.ended(1000, true);
    expect(backoff.ended(60_000, true)).toEqual({ restart: true, delayMs: 500, restarts: 5 });
    expect(backoff.ended(59_999, true)).toEqual({ restart: true, delayMs: 1000, restarts: 6 });
  });

  it("gives up at the 5th run in a row that ended before it was ready; a ready run starts the count again", () => {
    const backoff = new Backoff();
    for (let i = 0; i < 4; i++) expect(backoff.ended(100, false).restart).toBe(true);
    expect(backoff.ended(100, true).restart).toBe(true); // ready once: the count starts again
    for (let i = 0; i < 4; i++) expect(backoff.ended(100, false).restart).toBe(true);
    expect(backoff.ended(100, false)).toEqual({ restart: false, failedStarts: 5 });
  });

  it("takes its numbers from the policy", () => {
    const backoff = new Backoff({ ...DEFAULT_POLICY, firstDelayMs: 100, maxDelayMs: 300, maxFailedStarts: 2 });
    expect([backoff.ended(0, true), backoff.ended(0, true), backoff.ended(0, true)].map((d) => d.restart && d.delayMs)).toEqual([100, 200, 300]);
    expect(backoff.ended(0, false).restart).toBe(true);
    expect(backoff.ended(0, false).restart).toBe(false);
  });
});

describe("Supervisor", () => {
  it("restarts a process that died after the delay, not before, says so with its last lines, and says when it is ready again", async () => {
    const h = harness();
    h.supervisor.start();
    await h.ready();
    expect(h.supervisor.wasReady).toBe(true);
    await h.clock.advance(5000);
    h.last().end("signal SIGKILL");
    await h.clock.advance(499);
    expect(h.runs).toHaveLength(1);
    expect(h.logs).toEqual(["order-writer exited (signal SIGKILL); restarting in 0.5 s (restart 1)\n  its last lines:\n    line of run 1\n    Error: boom"]);
    await h.clock.advance(1);
    expect(h.runs).toHaveLength(2);
    expect(h.supervisor.pid).toBe(1001);
    await h.ready();
    expect(h.logs[1]).toBe("order-writer is SERVING on 127.0.0.1:50053 again (pid 1001, restart 1)");

    // Died again soon after: twice the delay.
    h.last().end("exit code 1");
    await h.clock.advance(0);
    expect(h.logs[2]).toMatch(/^order-writer exited \(exit code 1\); restarting in 1 s \(restart 2\)/);
    await h.clock.advance(1000);
    expect(h.runs).toHaveLength(3);
    expect(h.giveUps).toEqual([]);
  });

  it("gives up on a process whose runs keep ending before it is ready: once, naming it, with its last lines, and starts it no more", async () => {
    const h = harness();
    h.supervisor.start();
    for (let i = 0; i < 5; i++) {
      h.last().end("exit code 2");
      await h.clock.advance(20_000);
    }
    expect(h.runs).toHaveLength(5);
    expect(h.logs.filter((l) => l.includes("restarting in")).map((l) => l.match(/in ([\d.]+ s)/)![1])).toEqual(["0.5 s", "1 s", "2 s", "4 s"]);
    expect(h.giveUps).toHaveLength(1);
    expect(h.giveUps[0]).toBe(
      "order-writer keeps failing at start: 5 runs in a row ended before it was SERVING on 127.0.0.1:50053 (the last: exit code 2); giving up. Its last lines:\n    line of run 5\n    Error: boom",
    );
    await h.clock.advance(60_000);
    expect(h.runs).toHaveLength(5);
    expect(h.supervisor.wasReady).toBe(false);
  });

  it("kills a run that is not ready within the ready timeout; that counts as a failed start", async () => {
    const h = harness({ readyTimeoutMs: 30_000, maxFailedStarts: 2 });
    h.supervisor.start();
    await h.clock.advance(29_999);
    expect(h.last().running()).toBe(true);
    await h.clock.advance(1);
    expect(h.runs[0].running()).toBe(false);
    expect(h.logs[0]).toBe("order-writer not SERVING on 127.0.0.1:50053 30 s after it started (pid 1000): killing it");
    expect(h.logs[1]).toMatch(/^order-writer exited \(signal SIGKILL\); restarting in 0.5 s \(restart 1\)/);
    await h.clock.advance(500);
    await h.ready(); // the second run makes it in time: no timeout for it
    await h.clock.advance(60_000);
    expect(h.last().running()).toBe(true);
    expect(h.giveUps).toEqual([]);
  });

  it("restarts nothing once stopping: not a run that ends on stop(), not one waiting for its delay", async () => {
    const h = harness();
    h.supervisor.start();
    await h.ready();
    await h.supervisor.stop(1000);
    await h.clock.advance(60_000);
    expect(h.runs).toHaveLength(1);
    expect(h.logs).toEqual([]);

    const w = harness();
    w.supervisor.start();
    await w.ready();
    w.last().end("signal SIGKILL");
    await w.clock.advance(100); // in the 0.5 s before the restart
    await w.supervisor.stop(1000);
    await w.clock.advance(60_000);
    expect(w.runs).toHaveLength(1);
  });

  it("kill() ends the run at once and restarts nothing", async () => {
    const h = harness();
    h.supervisor.start();
    await h.ready();
    h.supervisor.kill();
    await h.clock.advance(60_000);
    expect(h.runs).toHaveLength(1);
    expect(await h.runs[0].exited).toBe("signal SIGKILL");
    expect(h.logs).toEqual([]);
  });

  it("a ready report of a run that has ended already changes nothing", async () => {
    const h = harness();
    h.supervisor.start();
    h.last().end("exit code 1");
    await h.ready(); // too late: that run is gone
    expect(h.supervisor.wasReady).toBe(false);
  });
});
