// The Python SDK's environment: a virtual environment in .local/python-sdk
// with the versions pinned in sdk-python/requirements.txt (grpcio, protobuf,
// googleapis-common-protos, and grpcio-tools to generate sdk-python/gen) and
// the SDK itself installed editable, so its examples and tests run on the
// checked-out code. `npm run python:install`, `npm run python:gen`, the
// freshness check and the Python SDK's tests all find it here.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { findPython, pipInstall, VenvInstallError, venvPython, withVenvLock } from "./venv.js";

const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const SDK_PYTHON_DIR = path.join(REPO_ROOT, "sdk-python");
export const PYTHON_SDK_VENV = path.join(REPO_ROOT, ".local", "python-sdk");
const PINS = [path.join(SDK_PYTHON_DIR, "requirements.txt"), path.join(SDK_PYTHON_DIR, "pyproject.toml")];
/** What was installed, kept in the venv: a change to the pins or the package reinstalls. */
const STAMP = ".seckill-sdk-installed";

export class PythonSdkUnavailableError extends Error {
  override name = "PythonSdkUnavailableError";
}

const pinned = () => PINS.map((file) => fs.readFileSync(file, "utf8")).join("\n");

/**
 * The venv's python, installing the pinned packages and the SDK first when the
 * venv lacks them or was installed from other pins. Throws
 * PythonSdkUnavailableError when there is no python3 or pip fails.
 */
export function ensurePythonSdk(log: (line: string) => void = () => undefined, opts: { venv?: string; pathVar?: string } = {}): { python: string; installed: boolean } {
  const venv = opts.venv ?? PYTHON_SDK_VENV;
  const python = venvPython(venv);
  const stamp = path.join(venv, STAMP);
  const want = pinned();
  const current = () => fs.existsSync(python) && fs.existsSync(stamp) && fs.readFileSync(stamp, "utf8") === want;
  if (current()) return { python, installed: false };
  try {
    return withVenvLock(venv, () => {
      if (current()) return { python, installed: false }; // installed while we waited
      const system = findPython(opts.pathVar);
      if (!system) throw new PythonSdkUnavailableError("no python3 to create the Python SDK's environment (python3 3.10+ with venv and pip)");
      log(`python sdk: installing sdk-python/requirements.txt and sdk-python into ${path.relative(process.cwd(), venv) || venv}`);
      fs.rmSync(stamp, { force: true });
      pipInstall(system, venv, ["-r", PINS[0], "--editable", SDK_PYTHON_DIR], { pathVar: opts.pathVar });
      fs.writeFileSync(stamp, want);
      return { python, installed: true };
    });
  } catch (error) {
    if (!(error instanceof VenvInstallError)) throw error;
    throw new PythonSdkUnavailableError(error.message);
  }
}
