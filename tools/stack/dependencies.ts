// Finds or starts the three servers the stack needs (Redis, NATS JetStream,
// PostgreSQL), so that `npm start` and the tests work on a bare machine.
//
// For each URL: if something answers on host:port we use it. If not, and the
// host is loopback, we start a private instance on that port with all state
// under <stateDir>/<name>; a remote host that does not answer is an error.
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import pg from "pg";

export interface DependencyUrls {
  redisUrl: string;
  natsUrl: string;
  databaseAdminUrl: string;
}

export interface RunningDependencies {
  /** Names of the private instances this call started, e.g. ["redis"]. */
  started: string[];
  /** Stops only what this call started and waits for the processes to exit. */
  stop(): Promise<void>;
  /** The pid of a started instance while it runs (undefined otherwise): for fault tests. */
  pid(name: DependencyName): number | undefined;
  /**
   * Sends a signal to a started instance's process group (Postgres's backends
   * included) and, when the signal ends it, resolves once it has exited.
   */
  signal(name: DependencyName, signal: NodeJS.Signals): Promise<void>;
  /**
   * Starts a started instance again on the same port with the same state
   * directory (killing it first if it still runs): NATS keeps its JetStream
   * store and Postgres its data; Redis, which saves nothing, comes back empty.
   */
  restart(name: DependencyName): Promise<void>;
}

interface EnsureOptions {
  /** e.g. <repo>/.local */
  stateDir: string;
  log?: (line: string) => void;
  /**
   * Directories (PATH syntax) searched for server binaries. Defaults to $PATH
   * plus /usr/lib/postgresql/<version>/bin, newest first. When given, it
   * replaces the whole search path (tests pass "" to simulate a bare machine).
   */
  path?: string;
}

export class MissingDependencyError extends Error {
  override name = "MissingDependencyError";
}

const PROBE_TIMEOUT_MS = 500;
const READY_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 10_000;

export type DependencyName = "redis" | "nats" | "postgres";
type Name = DependencyName;

interface Spec {
  name: Name;
  url: string;
  envVar: string;
  defaultPort: number;
  debianPackage: string;
}

export interface Started {
  name: Name;
  child: ChildProcess;
  stopSignal: NodeJS.Signals;
  /** Starts the same instance again (same port and state directory). */
  again?: () => Promise<Started>;
}

export async function ensureDependencies(urls: DependencyUrls, opts: EnsureOptions): Promise<RunningDependencies> {
  const log = opts.log ?? (() => {});
  const specs: Spec[] = [
    { name: "redis", url: urls.redisUrl, envVar: "REDIS_URL", defaultPort: 6379, debianPackage: "redis-server" },
    { name: "nats", url: urls.natsUrl, envVar: "NATS_URL", defaultPort: 4222, debianPackage: "nats-server" },
    { name: "postgres", url: urls.databaseAdminUrl, envVar: "DATABASE_ADMIN_URL", defaultPort: 5432, debianPackage: "postgresql" },
  ];

  const results = await Promise.allSettled(specs.map((spec) => ensureOne(spec, opts, log)));
  const started = results.flatMap((r) => (r.status === "fulfilled" && r.value ? [r.value] : []));
  const running = track(started);
  const failure = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failure) {
    // Do not leave half a stack behind when one dependency fails.
    await running.stop();
    throw failure.reason;
  }
  return running;
}

/** Returns the started instance, or undefined when an existing server is used. */
async function ensureOne(spec: Spec, opts: EnsureOptions, log: (line: string) => void): Promise<Started | undefined> {
  const { host, port } = parseHostPort(spec);
  if (await probe(host, port)) {
    log(`${spec.name}: using ${spec.url}`);
    return undefined;
  }
  if (!isLoopback(host)) {
    throw new MissingDependencyError(
      `${spec.envVar}=${spec.url} points at a server that is not reachable (${host}:${port}). ` + `Start it, or point ${spec.envVar} at a running ${spec.name} server.`,
    );
  }

  // Find the binaries before touching the disk, so a missing server leaves nothing behind.
  const dirs = searchDirs(opts.path);
  const bin =
    spec.name === "postgres"
      ? // initdb and postgres must come from the same installation: use their directory.
        dirs.find((d) => isExecutable(path.join(d, "initdb")) && isExecutable(path.join(d, "postgres")))
      : dirs.map((d) => path.join(d, `${spec.name}-server`)).find(isExecutable);
  if (!bin) throw missingBinary(spec, spec.name === "postgres" ? "initdb/postgres" : `${spec.name}-server`);

  const instance = await startInstance(spec, bin, opts, host, port, true);
  log(`${spec.name}: started private instance on ${host}:${port} (data in ${displayPath(path.resolve(opts.stateDir, spec.name))})`);
  instance.again = async () => {
    const again = await startInstance(spec, bin, opts, host, port, false);
    log(`${spec.name}: restarted private instance on ${host}:${port}`);
    return again;
  };
  return instance;
}

/** Starts the private instance; `fresh` starts its log afresh (a restart appends to it). */
async function startInstance(spec: Spec, bin: string, opts: EnsureOptions, host: string, port: number, fresh: boolean): Promise<Started> {
  const dir = path.resolve(opts.stateDir, spec.name);
  const logFile = path.resolve(opts.stateDir, `${spec.name}.log`);
  // Bind to the URL's address when it is an IP literal (127.0.0.2, ::1), else IPv4 loopback.
  const bindHost = net.isIP(host) ? host : "127.0.0.1";
  fs.mkdirSync(dir, { recursive: true });
  if (fresh) fs.writeFileSync(logFile, ""); // fresh log per start, so its tail describes this attempt

  let instance: Started;
  if (spec.name === "redis") {
    const args = ["--port", String(port), "--bind", bindHost, "--save", "", "--appendonly", "no", "--dir", dir];
    instance = spawnLogged(spec.name, bin, args, logFile);
    await waitReady(instance, logFile, () => redisPing(host, port));
  } else if (spec.name === "nats") {
    const args = ["-a", bindHost, "-p", String(port), "-js", "-sd", dir];
    instance = spawnLogged(spec.name, bin, args, logFile);
    await waitReady(instance, logFile, () => natsInfo(host, port));
  } else {
    instance = await startPostgres(bin, dir, logFile, bindHost, host, port);
  }
  return instance;
}

async function startPostgres(binDir: string, dir: string, logFile: string, bindHost: string, host: string, port: number): Promise<Started> {
  const dataDir = path.join(dir, "data");

  // initdb and postgres refuse to run as root: drop to an unprivileged user that owns the files.
  const user = process.getuid?.() === 0 ? unprivilegedUser() : undefined;
  if (user && fs.statSync(dir).uid !== user.uid) {
    execFileSync("chown", ["-R", `${user.uid}:${user.gid}`, dir]);
  }
  if (user) letTraverse(path.dirname(dir));
  const asUser = user ? { uid: user.uid, gid: user.gid } : {};

  if (!fs.existsSync(path.join(dataDir, "PG_VERSION"))) {
    const { child: initdb } = spawnLogged("postgres", path.join(binDir, "initdb"), ["-D", dataDir, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"], logFile, {
      cwd: dir,
      ...asUser,
    });
    const code = await new Promise<number | null>((resolve) => {
      initdb.on("error", () => resolve(-1));
      initdb.on("exit", (c) => resolve(c));
    });
    if (code !== 0) {
      throw new Error(`postgres: initdb failed (exit ${code}); last log lines from ${logFile}:\n${tail(logFile)}`);
    }
  }

  const args = ["-D", dataDir, "-p", String(port), "-k", dir, "-c", `listen_addresses=${bindHost}`];
  const instance = spawnLogged("postgres", path.join(binDir, "postgres"), args, logFile, { cwd: dir, ...asUser });
  await waitReady(instance, logFile, () => pgSelect1(host, port));
  return instance;
}

// ---------------------------------------------------------------- processes

/** Every child we spawned and that is still running; killed synchronously if the parent exits first. */
const live = new Set<Started>();
let exitHookInstalled = false;

function killAllOnExit(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const s of live) s.child.kill(s.stopSignal);
  });
}

function track(started: Started[]): RunningDependencies {
  const find = (name: Name) => {
    const s = started.find((x) => x.name === name);
    if (!s) throw new Error(`${name}: no private instance was started (an existing server is used)`);
    return s;
  };
  return {
    started: started.map((s) => s.name),
    stop: async () => {
      await Promise.all(started.map(stopChild));
    },
    pid: (name) => {
      const s = started.find((x) => x.name === name);
      return s && isRunning(s.child) ? s.child.pid : undefined;
    },
    signal: async (name, signal) => {
      const s = find(name);
      if (!isRunning(s.child)) return;
      const ends = signal === "SIGKILL" || signal === s.stopSignal;
      const exited = ends ? new Promise<void>((resolve) => s.child.once("exit", () => resolve())) : undefined;
      process.kill(-s.child.pid!, signal); // detached: the instance leads its own process group
      await exited;
    },
    restart: async (name) => {
      const s = find(name);
      if (isRunning(s.child)) {
        process.kill(-s.child.pid!, "SIGCONT"); // a paused instance cannot die
        const exited = new Promise<void>((resolve) => s.child.once("exit", () => resolve()));
        process.kill(-s.child.pid!, "SIGKILL");
        await exited;
      }
      const again = await s.again!();
      again.again = s.again;
      started[started.indexOf(s)] = again;
    },
  };
}

export async function stopChild(s: Started): Promise<void> {
  if (!isRunning(s.child)) return;
  const exited = new Promise<void>((resolve) => s.child.once("exit", () => resolve()));
  s.child.kill(s.stopSignal);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), STOP_TIMEOUT_MS)));
  if (await Promise.race([exited.then(() => false), timedOut])) {
    s.child.kill("SIGKILL");
    await exited;
  }
  clearTimeout(timer);
}

export function isRunning(child: ChildProcess): boolean {
  return child.pid !== undefined && child.exitCode === null && child.signalCode === null;
}

/** Spawns with stdout/stderr appended to logFile, and registers the child for kill-on-exit. */
export function spawnLogged(name: Name, bin: string, args: string[], logFile: string, extra: { cwd?: string; uid?: number; gid?: number } = {}): Started {
  const fd = fs.openSync(logFile, "a");
  try {
    // detached: its own process group, so a terminal's Ctrl-C does not stop it
    // before the services that use it have drained; stop() and the exit hook do.
    const child = spawn(bin, args, { stdio: ["ignore", fd, fd], detached: true, ...extra });
    // Postgres treats SIGTERM as "smart" shutdown (waits for every client to leave); SIGINT is "fast".
    const started: Started = { name, child, stopSignal: name === "postgres" ? "SIGINT" : "SIGTERM" };
    child.on("error", () => {}); // surfaced by waitReady / the exit code
    if (child.pid !== undefined) {
      killAllOnExit();
      live.add(started);
      child.once("exit", () => live.delete(started));
    }
    return started;
  } finally {
    fs.closeSync(fd); // the child has its own copy
  }
}

/** Polls `check` until it succeeds; fails fast if the child dies, or after READY_TIMEOUT_MS. */
export async function waitReady(instance: Started, logFile: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let spawnError: Error | undefined;
  instance.child.once("error", (err) => (spawnError = err));
  for (;;) {
    if (await check().catch(() => false)) return;
    const dead = spawnError || !isRunning(instance.child);
    if (dead || Date.now() > deadline) {
      await stopChild(instance);
      const why = spawnError
        ? `could not be started (${spawnError.message})`
        : dead
          ? `exited (code ${instance.child.exitCode ?? instance.child.signalCode})`
          : `did not become ready within ${READY_TIMEOUT_MS / 1000} s`;
      throw new Error(`${instance.name}: private instance ${why}; last log lines from ${logFile}:\n${tail(logFile)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

function tail(file: string, lines = 20): string {
  try {
    return fs.readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

/**
 * The unprivileged user must reach its data directory: every ancestor we own
 * that others cannot enter (a 0700 .local/, say) gets o+x — enter, not list.
 */
function letTraverse(from: string): void {
  for (let d = from; d !== path.dirname(d); d = path.dirname(d)) {
    const st = fs.statSync(d);
    if ((st.mode & 0o001) === 0 && st.uid === process.getuid?.()) fs.chmodSync(d, (st.mode & 0o7777) | 0o001);
  }
}

function unprivilegedUser(): { name: string; uid: number; gid: number } {
  for (const name of ["postgres", "nobody"]) {
    try {
      const uid = Number(execFileSync("id", ["-u", name], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }));
      const gid = Number(execFileSync("id", ["-g", name], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }));
      return { name, uid, gid };
    } catch {
      // user does not exist, try the next one
    }
  }
  throw new Error('postgres: running as root, but neither user "postgres" nor "nobody" exists to run postgres as');
}

// ---------------------------------------------------------------- binaries

function searchDirs(override: string | undefined): string[] {
  if (override !== undefined) return override.split(path.delimiter).filter(Boolean);
  const dirs = (process.env.PATH ?? "").split(path.delimiter).filter(Boolean);
  // Debian keeps initdb/postgres off PATH, in /usr/lib/postgresql/<major>/bin.
  const root = "/usr/lib/postgresql";
  const versions = fs.existsSync(root) ? fs.readdirSync(root) : [];
  versions.sort((a, b) => parseFloat(b) - parseFloat(a));
  return [...dirs, ...versions.map((v) => path.join(root, v, "bin"))];
}

/** The `<name>-server` binary in the directories searched for servers (see EnsureOptions.path), or undefined. */
export function findServerBinary(name: "redis" | "nats", pathOverride?: string): string | undefined {
  return searchDirs(pathOverride)
    .map((d) => path.join(d, `${name}-server`))
    .find(isExecutable);
}

function missingBinary(spec: Spec, binary: string): MissingDependencyError {
  return new MissingDependencyError(
    `${spec.name}: nothing answers at ${spec.envVar}=${spec.url} and ${binary} was not found to start a private ` +
      `instance. Install it (apt-get install ${spec.debianPackage}) or set ${spec.envVar} to a running server.`,
  );
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------- network

function parseHostPort(spec: Spec): { host: string; port: number } {
  let url: URL;
  try {
    url = new URL(spec.url);
  } catch {
    throw new MissingDependencyError(`${spec.envVar}=${spec.url} is not a valid URL`);
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1") || "127.0.0.1"; // strip IPv6 brackets
  return { host, port: url.port ? Number(url.port) : spec.defaultPort };
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** True if a TCP connection to host:port succeeds within PROBE_TIMEOUT_MS (DNS failures count as unreachable). */
function probe(host: string, port: number): Promise<boolean> {
  return withSocket(host, port, (_socket, done) => done(true), PROBE_TIMEOUT_MS);
}

/** Opens a socket and lets `onConnect` decide the result; any error or timeout yields false. */
function withSocket(host: string, port: number, onConnect: (socket: net.Socket, done: (ok: boolean) => void) => void, timeoutMs = 2_000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once("error", () => done(false));
    socket.once("connect", () => onConnect(socket, done));
  });
}

/** Reads from the socket until `want` matches the accumulated text (or the socket closes). */
function expectReply(socket: net.Socket, done: (ok: boolean) => void, want: RegExp): void {
  let text = "";
  socket.on("data", (chunk) => {
    text += chunk.toString("utf8");
    if (want.test(text)) done(true);
  });
  socket.once("close", () => done(false));
}

function redisPing(host: string, port: number): Promise<boolean> {
  return withSocket(host, port, (socket, done) => {
    expectReply(socket, done, /^\+PONG\r\n/);
    socket.write("PING\r\n");
  });
}

export function natsInfo(host: string, port: number): Promise<boolean> {
  return withSocket(host, port, (socket, done) => expectReply(socket, done, /^INFO /));
}

async function pgSelect1(host: string, port: number): Promise<boolean> {
  const client = new pg.Client({ host, port, user: "postgres", database: "postgres", connectionTimeoutMillis: 2_000 });
  client.on("error", () => {}); // a dying connection must not crash the process
  try {
    await client.connect();
    await client.query("SELECT 1");
    return true;
  } finally {
    await client.end().catch(() => {});
  }
}

function displayPath(dir: string): string {
  const rel = path.relative(process.cwd(), dir);
  return rel && !rel.startsWith("..") && !path.isAbsolute(rel) ? rel : dir;
}
