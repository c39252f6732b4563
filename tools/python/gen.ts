// npm run python:gen [-- OUT_DIR] — regenerates sdk-python/gen (or OUT_DIR)
// from proto/ with the pinned grpcio-tools of the Python SDK's environment.
import { spawnSync } from "node:child_process";
import path from "node:path";
import { ensurePythonSdk, PythonSdkUnavailableError, SDK_PYTHON_DIR } from "./sdk.js";

try {
  const { python } = ensurePythonSdk((line) => console.error(line));
  const out = process.argv[2] ? [path.resolve(process.argv[2])] : [];
  // No __pycache__ next to the generated code: it is compared byte for byte.
  const run = spawnSync(python, [path.join(SDK_PYTHON_DIR, "generate.py"), ...out], { stdio: "inherit", env: { ...process.env, PYTHONDONTWRITEBYTECODE: "1" } });
  process.exit(run.status ?? 1);
} catch (error) {
  if (!(error instanceof PythonSdkUnavailableError)) throw error;
  console.error(`FAIL  ${error.message}`);
  process.exit(1);
}
