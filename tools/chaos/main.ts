// `npm run chaos -- [options]` (and `seckill chaos [options]`): the fault campaign.
// Exit code 0 when no run found an anomaly, 1 when one did, 2 on bad options.
import { formatSummary, runCampaign } from "./campaign.js";
import { parseCampaignArgs, USAGE } from "./options.js";

async function main(): Promise<number> {
  let parsed: ReturnType<typeof parseCampaignArgs>;
  const json = process.argv.includes("--json");
  try {
    parsed = parseCampaignArgs(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`chaos: ${(error as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (parsed === "help") {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  process.stderr.write(`chaos: seed ${parsed.seed}\n`);
  // stdout carries the result alone: what the service processes print goes to stderr, with the progress.
  const stdout = process.stdout.write.bind(process.stdout);
  process.stdout.write = process.stderr.write.bind(process.stderr) as typeof process.stdout.write;
  const result = await runCampaign({ ...parsed, log: (line) => process.stderr.write(`${line}\n`) });
  stdout(`${json ? JSON.stringify(result, null, 2) : formatSummary(result)}\n`);
  return result.ok ? 0 : 1;
}

const code = await main();
process.exitCode = code;
// Child processes are gone by then; this only guards against a stray handle keeping the process alive.
setTimeout(() => process.exit(code), 3000).unref();
