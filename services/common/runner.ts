// What every main.ts does: read config once, start the service, stop it
// gracefully on SIGTERM/SIGINT (a second signal forces the exit).
import { ConfigError, readConfig, type Config } from "./config.js";
import { createLogger, type Logger } from "./log.js";
import { startTracing, type Tracing } from "./tracing.js";

/** Set by `npm start` for its children: stop when the supervisor's pipe on stdin closes. */
export const SUPERVISED_ENV = "SECKILL_SUPERVISED";

export interface RunningService {
  /** Where the service listens, for the start-up line. */
  address: string;
  stop(): Promise<void>;
}

export async function runService(name: string, start: (config: Config, log: Logger) => Promise<RunningService>): Promise<void> {
  let config: Config;
  try {
    config = readConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${name}: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  const log = createLogger({ service: name, group: config.serviceGroup }, config.logLevel);
  let running: RunningService;
  let tracing: Tracing;
  try {
    tracing = await startTracing(name, config.otlpEndpoint, log);
    running = await start(config, log);
  } catch (error) {
    log.error("start-up failed", { err: error instanceof Error ? error : String(error) });
    process.exit(1);
  }
  log.info("serving", { address: running.address });

  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn("second signal: exiting now", { signal });
      process.exit(1);
    }
    stopping = true;
    log.info("shutting down", { signal });
    // The last spans are exported before the process exits.
    running
      .stop()
      .then(() => tracing.shutdown())
      .then(
        () => process.exit(0),
        (error) => {
          log.error("shutdown failed", { err: error instanceof Error ? error : String(error) });
          process.exit(1);
        },
      );
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  if (process.env[SUPERVISED_ENV] === "1") {
    process.stdin.on("close", () => {
      if (!stopping) onSignal("SIGTERM");
    });
    process.stdin.resume();
  }
}
