// Validation of an Envoy bootstrap of the edge: strictly against Envoy's API
// protos (proto-json.ts over api-protos.ts), then the semantic checks
// (semantics.ts), and the freshness of the committed files against envoy/src.

import { parse } from "yaml";
import { BOOTSTRAP_TYPE, loadApiProtos } from "./api-protos.js";
import { readContract } from "./contract.js";
import { ProtoJsonValidator, type ProtoIssue } from "./proto-json.js";
import { checkSemantics, type Contract } from "./semantics.js";
import { renderVariant } from "./render.js";
import type { Variant } from "./topology.js";

export interface CheckIssue extends ProtoIssue {
  kind: "yaml" | "proto" | "semantic" | "stale";
}

let validator: ProtoJsonValidator | undefined;
let contract: Contract | undefined;

/** Validates a parsed bootstrap; the semantic checks run only on a document Envoy would accept. */
export function validateBootstrap(doc: unknown, variant: Variant): CheckIssue[] {
  validator ??= new ProtoJsonValidator(loadApiProtos());
  contract ??= readContract();
  const proto = validator.validate(BOOTSTRAP_TYPE, doc).map((i) => ({ ...i, kind: "proto" as const }));
  if (proto.length > 0) return proto;
  return checkSemantics(doc as Record<string, unknown>, variant, contract).map((i) => ({ ...i, kind: "semantic" as const }));
}

export function validateBootstrapYaml(text: string, variant: Variant): CheckIssue[] {
  let doc: unknown;
  try {
    doc = parse(text, { strict: true, uniqueKeys: true });
  } catch (error) {
    return [{ kind: "yaml", path: "(document)", message: (error as Error).message }];
  }
  return validateBootstrap(doc, variant);
}

/**
 * A committed config file's issues: not valid, breaking an edge rule, or not
 * what envoy/src generates (`text` undefined: the file is missing).
 */
export function checkConfigFile(text: string | undefined, variant: Variant, file: string): CheckIssue[] {
  if (text === undefined) return [{ kind: "stale", path: file, message: "missing: run npm run envoy:gen" }];
  const issues = validateBootstrapYaml(text, variant);
  if (text !== renderVariant(variant)) {
    issues.push({ kind: "stale", path: file, message: "differs from what envoy/src generates: run npm run envoy:gen (and do not edit the YAML by hand)" });
  }
  return issues;
}

export const formatIssue = (i: CheckIssue) => `${i.kind}: ${i.path}: ${i.message}`;
