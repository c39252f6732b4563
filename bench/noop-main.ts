// The baselines as one process (the bench runs it like a service): the no-op
// grpc-js server on BENCH_NOOP_ADDR and, when BENCH_FLOOR_ADDR is set, the
// bare HTTP/2 refusal floor (refusal-floor.ts) on it. The bench loads one at a
// time, so the process's CPU in a run is that baseline's; its RSS (figure f's
// no-op baseline) is the one process's, after both have run.
import { runService } from "../services/common/runner.js";
import { startNoopServer } from "./noop-server.js";
import { startRefusalFloor } from "./refusal-floor.js";

await runService("noop", async (config, log) => {
  const floorAddress = process.env.BENCH_FLOOR_ADDR;
  const floor = floorAddress ? await startRefusalFloor(floorAddress, config.maxInFlight) : undefined;
  const noop = await startNoopServer(process.env.BENCH_NOOP_ADDR ?? "127.0.0.1:0", config, log);
  return {
    address: floor ? `${noop.address} (refusal floor ${floor.address})` : noop.address,
    async stop() {
      await noop.stop();
      await floor?.stop();
    },
  };
});
