// Validation by Envoy itself: `envoy --mode validate` on a config, with the
// files it references in place. The bootstrap names files where Envoy will
// find them (the JSON transcoder's descriptor set, and in production the TLS
// certificate, key and client CA under /etc/envoy/tls): they are staged in a
// temporary directory — the real descriptor set, and a throwaway CA and
// certificate made with openssl — and the config's paths pointed there, so
// Envoy loads every one of them as it would in service.
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { DESCRIPTOR_FILE } from "./descriptor.js";
import type { ConfigIssue } from "./semantics.js";
import { TOPOLOGIES, type Variant } from "./topology.js";

const REPO_ROOT = resolve(import.meta.dirname, "../..");

/** A self-signed CA and a certificate it signs, as PEM files in `dir`. */
function makeCertificates(dir: string): { ca: string; cert: string; key: string } {
  const files = { ca: join(dir, "ca.crt"), caKey: join(dir, "ca.key"), cert: join(dir, "tls.crt"), key: join(dir, "tls.key"), csr: join(dir, "tls.csr") };
  const steps = [
    ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", "/CN=seckill-validate-ca", "-keyout", files.caKey, "-out", files.ca],
    ["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=seckill-edge", "-keyout", files.key, "-out", files.csr],
    ["x509", "-req", "-in", files.csr, "-CA", files.ca, "-CAkey", files.caKey, "-CAcreateserial", "-days", "1", "-out", files.cert],
  ];
  for (const args of steps) {
    const run = spawnSync("openssl", args, { encoding: "utf8" });
    if (run.status !== 0) throw new Error(`openssl ${args[0]} failed (needed to stage TLS files for envoy --mode validate): ${run.error?.message ?? run.stderr}`);
  }
  return files;
}

/**
 * Envoy's explanation of a refusal: its critical log entry (which may run over
 * several lines), without the log prefix, the source location and the JSON
 * dump of the whole config some messages end with; else its last lines.
 */
export function envoyRefusal(output: string): string {
  const lines = output.split("\n");
  const first = lines.findIndex((l) => l.includes("[critical]"));
  const entry =
    first >= 0
      ? lines.slice(first).join(" ")
      : lines
          .filter((l) => l.trim())
          .slice(-5)
          .join(" ");
  const message = entry
    .replace(/^(\[[^\]]*\])+\s*/, "") // [time][thread][critical][main]
    .replace(/^\[source\/[^\]]*\]\s*/, "")
    .replace(/\): \{.*$/s, ")")
    .replace(/\s+/g, " ")
    .trim();
  return (message.length > 1000 ? `${message.slice(0, 1000)}…` : message) || "(no output)";
}

/**
 * Runs `envoy --mode validate` on `text` (the YAML of `variant`), with the
 * files it references staged; no issues when Envoy accepts it, else one
 * carrying Envoy's own message.
 */
export function validateWithEnvoy(bin: string, text: string, variant: Variant, name = `${variant} config`): ConfigIssue[] {
  const t = TOPOLOGIES[variant];
  const dir = mkdtempSync(join(tmpdir(), "seckill-envoy-validate-"));
  try {
    const staged = new Map<string, string>();
    const descriptor = join(dir, "seckill.pb");
    copyFileSync(resolve(REPO_ROOT, DESCRIPTOR_FILE), descriptor);
    staged.set(t.protoDescriptor, descriptor);
    if (t.tls) {
      const certs = makeCertificates(dir);
      staged.set(t.tls.certificateChain, certs.cert).set(t.tls.privateKey, certs.key).set(t.tls.clientCa, certs.ca);
    }
    let config = text;
    for (const [from, to] of staged) config = config.split(from).join(to);
    const file = join(dir, "envoy.yaml");
    writeFileSync(file, config);
    // --log-level critical: the refusal is a critical line; fetch warnings (the JWKS host is absent here) are not issues.
    const run = spawnSync(bin, ["--mode", "validate", "-c", file, "--disable-hot-restart", "--log-level", "critical"], { encoding: "utf8", timeout: 60_000 });
    if (run.status === 0) return [];
    const why = run.error ? `envoy could not run: ${run.error.message}` : envoyRefusal(`${run.stdout}\n${run.stderr}`).split(file).join(name);
    return [{ path: name, message: why }];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
