// Validation of an Envoy bootstrap of the edge: by Envoy itself (`envoy --mode
// validate`, envoy-validate.ts: every field, type, enum, @type and constraint
// of its API), then the edge's own rules that Envoy cannot know (semantics.ts),
// and the freshness of the committed files against envoy/src.

import { parse } from "yaml";
import { readContract } from "./contract.js";
import { validateWithEnvoy } from "./envoy-validate.js";
import { checkSemantics, type ConfigIssue, type Contract } from "./semantics.js";
import { renderVariant } from "./render.js";
import type { Variant } from "./topology.js";

export interface CheckIssue extends ConfigIssue {
  kind: "yaml" | "envoy" | "semantic" | "stale";
}

let contract: Contract | undefined;

/** The edge's rules on a parsed bootstrap. */
export function validateBootstrap(doc: unknown, variant: Variant): CheckIssue[] {
  contract ??= readContract();
  return checkSemantics(doc as Record<string, unknown>, variant, contract).map((i) => ({ ...i, kind: "semantic" as const }));
}

/** A bootstrap's YAML: parsed strictly, then Envoy's verdict (when `envoy` is given) and the edge's rules. */
export function validateBootstrapYaml(text: string, variant: Variant, envoy?: string): CheckIssue[] {
  let doc: unknown;
  try {
    doc = parse(text, { strict: true, uniqueKeys: true });
  } catch (error) {
    return [{ kind: "yaml", path: "(document)", message: (error as Error).message }];
  }
  const refused = envoy ? validateWithEnvoy(envoy, text, variant).map((i) => ({ ...i, kind: "envoy" as const })) : [];
  return [...refused, ...validateBootstrap(doc, variant)];
}

/**
 * A committed config file's issues: refused by Envoy, breaking an edge rule,
 * or not what envoy/src generates (`text` undefined: the file is missing).
 */
export function checkConfigFile(text: string | undefined, variant: Variant, file: string, envoy?: string): CheckIssue[] {
  if (text === undefined) return [{ kind: "stale", path: file, message: "missing: run npm run envoy:gen" }];
  const issues = validateBootstrapYaml(text, variant, envoy);
  if (text !== renderVariant(variant)) {
    issues.push({ kind: "stale", path: file, message: "differs from what envoy/src generates: run npm run envoy:gen (and do not edit the YAML by hand)" });
  }
  return issues;
}

export const formatIssue = (i: CheckIssue) => `${i.kind}: ${i.path}: ${i.message}`;
