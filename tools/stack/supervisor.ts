// Keeps the processes of `npm start` running the way Kubernetes keeps a pod's
// containers running: a process that ends is started again after a delay that
// doubles from 0.5 s up to 10 s (CrashLoopBackOff), and is back at 0.5 s once
// a run has lasted a minute. A process whose runs keep ending before it is
// ready (SERVING) is given up on: restarting it will not help, and the caller
// stops the stack with a message naming it and its last lines.
import type { ServiceProcess } from "./children.js";

export interface RestartPolicy {
  /** Delay before the first restart; it doubles with each restart after that. */
  firstDelayMs: number;
  /** The longest delay. */
  maxDelayMs: number;
  /** A run that lasted this long brings the delay back to firstDelayMs. */
  resetAfterMs: number;
  /** This many runs in a row ended before the process was ready: give up. */
  maxFailedStarts: number;
  /** A run not ready this long after it started is killed (a failed start). */
  readyTimeoutMs: number;
}

export const DEFAULT_POLICY: RestartPolicy = {
  firstDelayMs: 500,
  maxDelayMs: 10_000,
  resetAfterMs: 60_000,
  maxFailedStarts: 5,
  readyTimeoutMs: 30_000,
};

/** What to do after a run ended: start it again after delayMs (its restarts-th restart), or give up. */
export type Decision = { restart: true; delayMs: number; restarts: number } | { restart: false; failedStarts: number };

/** The policy's arithmetic, one per supervised process. */
export class Backoff {
  private nextDelayMs: number;
  private restarts = 0;
  private failedStarts = 0;

  constructor(private readonly policy: RestartPolicy = DEFAULT_POLICY) {
    this.nextDelayMs = policy.firstDelayMs;
  }

  /** A run ended after ranMs; wasReady: it had been ready (SERVING) at some point. */
  ended(ranMs: number, wasReady: boolean): Decision {
    this.failedStarts = wasReady ? 0 : this.failedStarts + 1;
    if (this.failedStarts >= this.policy.maxFailedStarts) return { restart: false, failedStarts: this.failedStarts };
    if (ranMs >= this.policy.resetAfterMs) this.nextDelayMs = this.policy.firstDelayMs;
    const delayMs = this.nextDelayMs;
    this.nextDelayMs = Math.min(delayMs * 2, this.policy.maxDelayMs);
    this.restarts += 1;
    return { restart: true, delayMs, restarts: this.restarts };
  }
}

/** The clock and timers a Supervisor uses; tests pass their own. */
export interface Timers {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realTimers: Timers = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** One run of a process, as spawnService returns it. */
export type Run = Pick<ServiceProcess, "pid" | "exited" | "running" | "stop" | "kill" | "lastLines">;

export interface SupervisorOptions {
  name: string;
  /** Starts one run of the process. */
  spawn: () => Run;
  /**
   * Resolves true once the run is ready, or false as soon as `wanted()` turns
   * false (the run ended, or the stack is stopping).
   */
  ready: (wanted: () => boolean) => Promise<boolean>;
  /** What being ready is, for the log: "SERVING on 127.0.0.1:50053". */
  readyAs: string;
  log: (line: string) => void;
  /** Called once, when the process is given up on: a message naming it, with its last lines. */
  giveUp: (message: string) => void;
  policy?: Partial<RestartPolicy>;
  timers?: Timers;
}

/** How many last lines a restart's log shows, and a give-up's. */
const CRASH_LINES = 5;
const GIVE_UP_LINES = 20;

const seconds = (ms: number) => `${Number((ms / 1000).toFixed(1))} s`;

/** One process kept running: started again with backoff whenever it ends, until stop(). */
export class Supervisor {
  readonly name: string;
  readonly readyAs: string;
  private readonly policy: RestartPolicy;
  private readonly timers: Timers;
  private readonly backoff: Backoff;
  private run: Run | undefined;
  private startedAt = 0;
  private ready = false;
  private everReady = false;
  private stopping = false;
  private restarts = 0;
  private restartTimer: unknown;
  private readyTimer: unknown;

  constructor(private readonly opts: SupervisorOptions) {
    this.name = opts.name;
    this.readyAs = opts.readyAs;
    this.policy = { ...DEFAULT_POLICY, ...opts.policy };
    this.timers = opts.timers ?? realTimers;
    this.backoff = new Backoff(this.policy);
  }

  /** Starts the first run. */
  start(): this {
    this.launch();
    return this;
  }

  /** The current run's pid (the last run's while it waits to restart). */
  get pid(): number {
    return this.run?.pid ?? -1;
  }

  /** Whether the process has been ready at least once since start(). */
  get wasReady(): boolean {
    return this.everReady;
  }

  /** No more restarts; the current run gets SIGTERM, then SIGKILL after graceMs. */
  async stop(graceMs: number): Promise<void> {
    this.halt();
    await this.run?.stop(graceMs);
  }

  /** No more restarts; the current run is killed now. */
  kill(): void {
    this.halt();
    this.run?.kill();
  }

  private halt(): void {
    this.stopping = true;
    this.timers.clearTimeout(this.restartTimer);
    this.timers.clearTimeout(this.readyTimer);
  }

  private launch(): void {
    const run = this.opts.spawn();
    this.run = run;
    this.startedAt = this.timers.now();
    this.ready = false;
    const wanted = () => !this.stopping && this.run === run && run.running();
    this.readyTimer = this.timers.setTimeout(() => {
      if (!wanted() || this.ready) return;
      this.opts.log(`${this.name} not ${this.readyAs} ${seconds(this.policy.readyTimeoutMs)} after it started (pid ${run.pid}): killing it`);
      run.kill();
    }, this.policy.readyTimeoutMs);
    this.opts.ready(wanted).then(
      (ready) => {
        if (!ready || !wanted()) return;
        this.ready = true;
        this.everReady = true;
        this.timers.clearTimeout(this.readyTimer);
        if (this.restarts > 0) this.opts.log(`${this.name} is ${this.readyAs} again (pid ${run.pid}, restart ${this.restarts})`);
      },
      () => undefined, // a probe that fails is a run that never got ready: the ready timeout ends it
    );
    void run.exited.then((how) => this.ended(run, how));
  }

  private ended(run: Run, how: string): void {
    if (this.stopping || this.run !== run) return;
    this.timers.clearTimeout(this.readyTimer);
    const decision = this.backoff.ended(this.timers.now() - this.startedAt, this.ready);
    if (!decision.restart) {
      this.halt();
      this.opts.giveUp(
        [
          `${this.name} keeps failing at start: ${decision.failedStarts} runs in a row ended before it was ${this.readyAs} (the last: ${how}); giving up. Its last lines:`,
          ...indent(run.lastLines().slice(-GIVE_UP_LINES)),
        ].join("\n"),
      );
      return;
    }
    this.restarts = decision.restarts;
    const last = run.lastLines().slice(-CRASH_LINES);
    this.opts.log(
      [
        `${this.name} exited (${how}); restarting in ${seconds(decision.delayMs)} (restart ${decision.restarts})`,
        ...(last.length > 0 ? [`  its last lines:`, ...indent(last)] : []),
      ].join("\n"),
    );
    this.restartTimer = this.timers.setTimeout(() => {
      this.restartTimer = undefined;
      if (!this.stopping) this.launch();
    }, decision.delayMs);
  }
}

function indent(lines: string[]): string[] {
  return lines.length > 0 ? lines.map((line) => `    ${line}`) : ["    (none)"];
}

/**
 * Resolves once every one of `supervisors` has been ready, false if
 * `waiting()` turns false first; throws naming those not ready after timeoutMs.
 */
export async function allReady(supervisors: Supervisor[], timeoutMs: number, waiting: () => boolean): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (waiting()) {
    const late = supervisors.filter((s) => !s.wasReady);
    if (late.length === 0) return true;
    if (Date.now() > deadline) throw new Error(`not ready within ${timeoutMs / 1000} s: ${late.map((s) => `${s.name} (not ${s.readyAs})`).join(", ")}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}
