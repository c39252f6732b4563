// npm run audit:runtime: the runtime dependencies (npm audit --omit=dev) must
// have no high or critical advisory. Fails on such an advisory; when the
// registry cannot answer audit requests (no network, or a registry or mirror
// without the audit endpoint) it says so plainly and passes, since that is no
// finding about the dependencies.
import { spawnSync } from "node:child_process";

interface AuditReport {
  metadata?: { vulnerabilities?: Record<string, number> };
  vulnerabilities?: Record<string, { severity: string; via: unknown[]; range?: string }>;
  message?: string;
  statusCode?: number;
  code?: string;
  error?: { code?: string; summary?: string; detail?: string };
}

const run = spawnSync("npm", ["audit", "--omit=dev", "--json"], { encoding: "utf8", shell: process.platform === "win32" });
let report: AuditReport | undefined;
try {
  report = JSON.parse(run.stdout) as AuditReport;
} catch {
  report = undefined;
}

const NETWORK_CODES = ["ENOTFOUND", "EAI_AGAIN", "EAI_FAIL", "ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "ENETUNREACH", "EHOSTUNREACH", "ECONNABORTED"];

const counts = report?.metadata?.vulnerabilities;
if (!counts) {
  const why = report?.message ?? report?.error?.summary ?? report?.error?.code ?? (run.stderr.trim().split("\n").pop() || `npm exited with ${run.status}`);
  const code = report?.code ?? report?.error?.code ?? "";
  // An HTTP answer from the registry (e.g. 404 or 405 from a mirror without the audit endpoint) or no connection at all.
  const unreachable = typeof report?.statusCode === "number" || NETWORK_CODES.includes(code) || /audit endpoint|request to .* failed|network/i.test(`${why}\n${run.stderr}`);
  if (!unreachable) {
    console.error(`audit:runtime: npm audit failed: ${why}`);
    process.exit(1);
  }
  console.log(`audit:runtime: the registry did not answer the audit request (${why}); the runtime dependencies were NOT audited.`);
  process.exit(0);
}

const severe = Object.entries(report?.vulnerabilities ?? {}).filter(([, v]) => v.severity === "high" || v.severity === "critical");
const summary = Object.entries(counts)
  .filter(([level, n]) => level !== "total" && n > 0)
  .map(([level, n]) => `${n} ${level}`)
  .join(", ");
if (severe.length > 0) {
  console.error(`audit:runtime: ${severe.length} runtime dependencies with high or critical advisories (${summary}):`);
  for (const [name, v] of severe) console.error(`  ${name} (${v.severity}${v.range ? `, ${v.range}` : ""})`);
  console.error("Run `npm audit --omit=dev` for the advisories and fixes.");
  process.exit(1);
}
console.log(`audit:runtime: no high or critical advisory in the runtime dependencies${summary ? ` (${summary})` : ""}.`);
