// What every command gets: where to write, and the backend from the global
// options, the services the command needs checked for reachability before it runs.
import type { Command } from "commander";
import { CliError, checkReachable, connect, describeError, isGrpcError, type Backend, type ServiceName } from "./backend.js";

export interface Io {
  /** Writes one block of text and a newline to stdout. */
  out(text: string): void;
  /** Writes one block of text and a newline to stderr. */
  err(text: string): void;
  /** The raw stderr stream, for the progress bar (isTTY decides its style). */
  stderr: { write(chunk: string): unknown; isTTY?: boolean; columns?: number };
}

export interface GlobalOptions {
  inventory: string;
  order: string;
  gateway: string;
  edge: string;
  deadline: number;
}

export interface CommandContext {
  io: Io;
  /** Exit code the command asks for (simulate: 2 when a check failed). */
  exitCode: number;
  /** With `throughEdge`, a buyer's calls go through the edge at --edge (backend.buyer). */
  withBackend(cmd: Command, services: ServiceName[], run: (backend: Backend) => Promise<void>, opts?: { throughEdge?: boolean }): Promise<void>;
}

export function createContext(io: Io): CommandContext {
  return {
    io,
    exitCode: 0,
    async withBackend(cmd, services, run, opts = {}) {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      const backend = connect({ inventory: g.inventory, order: g.order, gateway: g.gateway, deadline: g.deadline, edge: opts.throughEdge ? g.edge : undefined });
      try {
        await checkReachable(backend, services);
        await run(backend);
      } catch (error) {
        if (isGrpcError(error)) throw new CliError(describeError(error));
        throw error;
      } finally {
        backend.close();
      }
    },
  };
}
