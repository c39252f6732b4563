// npm run python:install — makes the Python SDK's environment (see sdk.ts) and
// prints its python. Exits 1 with the reason when it cannot.
import { ensurePythonSdk, PythonSdkUnavailableError } from "./sdk.js";

try {
  const { python, installed } = ensurePythonSdk((line) => console.error(line));
  console.log(`python sdk: ${python}${installed ? " (installed now)" : ""}`);
} catch (error) {
  if (!(error instanceof PythonSdkUnavailableError)) throw error;
  console.error(`FAIL  ${error.message}`);
  process.exit(1);
}
