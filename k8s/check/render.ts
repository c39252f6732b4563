// Renders a kustomization with `kubectl kustomize` into plain objects.
import { execFileSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";
import type { K8sObject } from "./objects.js";

export const K8S_DIR = fileURLToPath(new URL("../", import.meta.url));
export const REPO_ROOT = join(K8S_DIR, "..");

/** The overlays under k8s/overlays, by directory name. */
export function overlayNames(): string[] {
  return readdirSync(join(K8S_DIR, "overlays"), { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort();
}

export const overlayDir = (name: string): string => join(K8S_DIR, "overlays", name);

export function render(dir: string): K8sObject[] {
  let text: string;
  try {
    text = execFileSync("kubectl", ["kustomize", dir], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024, stdio: ["ignore", "pipe", "pipe"] });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT")
      throw new Error("kubectl is not on PATH: the checks render the overlays with kubectl kustomize (kubectl 1.27 or newer)");
    const stderr = (error as { stderr?: string }).stderr?.trim();
    throw new Error(`kubectl kustomize ${dir} failed${stderr ? `: ${stderr}` : ""}`);
  }
  return parseAllDocuments(text).flatMap((doc) => {
    if (doc.errors.length > 0) throw new Error(`kubectl kustomize ${dir}: ${doc.errors[0].message}`);
    const value = doc.toJSON() as K8sObject | null;
    return value ? [value] : [];
  });
}
