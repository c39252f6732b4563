// The no-op baseline as its own process (the bench runs it like a service):
// listens on BENCH_NOOP_ADDR.
import { runService } from "../services/common/runner.js";
import { startNoopServer } from "./noop-server.js";

await runService("noop", (config, log) => startNoopServer(process.env.BENCH_NOOP_ADDR ?? "127.0.0.1:0", config, log));
