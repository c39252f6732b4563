// The rate limit file (gateway/ratelimit.yaml), in the format of Envoy's
// reference rate limit service: a domain and a tree of descriptors, each with a
// key, an optional value and an optional rate_limit {unit, requests_per_unit},
// nested by `descriptors`. It is read once at start and checked whole: every
// problem is reported with its file, line, column and field, and the gateway
// does not start.
import { readFileSync } from "node:fs";
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node, type Pair, type YAMLMap } from "yaml";
import { errorMessage } from "../../services/common/error-message.js";

export const RATE_LIMIT_UNITS = { second: 1000, minute: 60_000, hour: 3_600_000, day: 86_400_000 } as const;
export type RateLimitUnit = keyof typeof RATE_LIMIT_UNITS;

export interface RateLimit {
  unit: RateLimitUnit;
  requestsPerUnit: number;
  /** Optional name, echoed to Envoy in current_limit.name. */
  name: string;
}

/** One level of the tree: a descriptor entry matches `exact` by key and value first, then `any` by key. */
export interface RuleLevel {
  exact: Map<string, Map<string, DescriptorRule>>;
  any: Map<string, DescriptorRule>;
}

export interface DescriptorRule extends RuleLevel {
  key: string;
  value?: string;
  rateLimit?: RateLimit;
}

export interface RateLimitRules extends RuleLevel {
  domain: string;
}

export class RateLimitConfigError extends Error {
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(`invalid rate limit config ${file}:\n  ${problems.join("\n  ")}`);
    this.name = "RateLimitConfigError";
  }
}

export function loadRateLimitFile(file: string): RateLimitRules {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new RateLimitConfigError(file, [`cannot read the file: ${errorMessage(error)}`]);
  }
  return parseRateLimitConfig(text, file);
}

const MAX_REQUESTS_PER_UNIT = 0xffff_ffff; // uint32, as in Envoy's RateLimit message

export function parseRateLimitConfig(text: string, file = "ratelimit.yaml"): RateLimitRules {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true });
  const problems: string[] = [];
  const at = (node: Node | null | undefined, fallbackOffset = 0) => {
    const { line, col } = lines.linePos(node?.range?.[0] ?? fallbackOffset);
    return `${file}:${line}:${col}`;
  };
  const problem = (node: Node | null | undefined, field: string, what: string) => problems.push(`${at(node)}: ${field}: ${what}`);

  for (const error of doc.errors) {
    const pos = error.linePos?.[0];
    problems.push(`${file}:${pos?.line ?? 1}:${pos?.col ?? 1}: ${error.message.split("\n")[0]}`);
  }
  if (problems.length > 0) throw new RateLimitConfigError(file, problems);

  const fields = (node: YAMLMap, field: string, allowed: string[]): Map<string, Pair<Node, Node | null>> => {
    const out = new Map<string, Pair<Node, Node | null>>();
    for (const pair of node.items as Pair<Node, Node | null>[]) {
      const name = isScalar(pair.key) ? String(pair.key.value) : undefined;
      if (name === undefined || !allowed.includes(name)) {
        problem(pair.key, field, `unknown field ${JSON.stringify(name ?? "?")} (expected ${allowed.join(", ")})`);
        continue;
      }
      out.set(name, pair);
    }
    return out;
  };
  /** A string field of a map: `where` locates a missing field, or one with no value. */
  const stringField = (f: Map<string, Pair<Node, Node | null>>, name: string, where: Node, field: string, required: boolean): string | undefined => {
    const pair = f.get(name);
    const node = pair?.value;
    if (!pair || node == null || (isScalar(node) && node.value === null)) {
      if (required || pair) problem(pair?.key ?? where, field, "is required");
      return undefined;
    }
    if (!isScalar(node) || !["string", "number"].includes(typeof node.value) || String(node.value) === "") {
      problem(node, field, "expected a non-empty string");
      return undefined;
    }
    return String(node.value);
  };

  const rateLimit = (node: Node | null, field: string): RateLimit | undefined => {
    if (!isMap(node)) {
      problem(node, field, "expected a map with unit and requests_per_unit");
      return undefined;
    }
    const f = fields(node, field, ["unit", "requests_per_unit", "name"]);
    const unitNode = f.get("unit")?.value;
    const unitText = stringField(f, "unit", node, `${field}.unit`, true);
    let unit: RateLimitUnit | undefined;
    if (unitText !== undefined) {
      const lower = unitText.toLowerCase();
      if (lower in RATE_LIMIT_UNITS) unit = lower as RateLimitUnit;
      else problem(unitNode, `${field}.unit`, `expected second, minute, hour or day, got ${JSON.stringify(unitText)}`);
    }
    const rpuNode = f.get("requests_per_unit")?.value;
    let requestsPerUnit: number | undefined;
    if (!f.has("requests_per_unit")) problem(node, `${field}.requests_per_unit`, "is required");
    else if (!isScalar(rpuNode) || typeof rpuNode.value !== "number" || !Number.isInteger(rpuNode.value) || rpuNode.value < 0 || rpuNode.value > MAX_REQUESTS_PER_UNIT) {
      problem(rpuNode, `${field}.requests_per_unit`, `expected a whole number from 0 to ${MAX_REQUESTS_PER_UNIT}`);
    } else requestsPerUnit = rpuNode.value;
    const name = stringField(f, "name", node, `${field}.name`, false);
    if (unit === undefined || requestsPerUnit === undefined || (f.has("name") && name === undefined)) return undefined;
    return { unit, requestsPerUnit, name: name ?? "" };
  };

  const level = (node: Node | null | undefined, field: string, into: RuleLevel): void => {
    if (!isSeq(node)) {
      problem(node, field, "expected a list of descriptors");
      return;
    }
    node.items.forEach((item, i) => {
      const here = `${field}[${i}]`;
      if (!isMap(item)) {
        problem(item as Node, here, "expected a map with key and rate_limit or descriptors");
        return;
      }
      const f = fields(item, here, ["key", "value", "rate_limit", "descriptors"]);
      const key = stringField(f, "key", item, `${here}.key`, true);
      const value = stringField(f, "value", item, `${here}.value`, false);
      const rule: DescriptorRule = { key: key ?? "", value, exact: new Map(), any: new Map() };
      if (f.has("rate_limit")) rule.rateLimit = rateLimit(f.get("rate_limit")!.value, `${here}.rate_limit`);
      if (f.has("descriptors")) level(f.get("descriptors")!.value, `${here}.descriptors`, rule);
      if (!f.has("rate_limit") && !f.has("descriptors")) problem(item, here, "has neither rate_limit nor descriptors");
      if (key === undefined) return;
      const taken = value === undefined ? into.any.has(key) : into.exact.get(key)?.has(value);
      if (taken) {
        problem(item, here, `duplicate descriptor ${value === undefined ? key : `${key}=${value}`} at this level`);
        return;
      }
      if (value === undefined) into.any.set(key, rule);
      else {
        if (!into.exact.has(key)) into.exact.set(key, new Map());
        into.exact.get(key)!.set(value, rule);
      }
    });
  };

  const root = doc.contents as Node | null;
  const rules: RateLimitRules = { domain: "", exact: new Map(), any: new Map() };
  if (!isMap(root)) {
    problem(root, "(top level)", "expected a map with domain and descriptors");
  } else {
    const f = fields(root, "(top level)", ["domain", "descriptors"]);
    rules.domain = stringField(f, "domain", root, "domain", true) ?? "";
    if (!f.has("descriptors")) problem(root, "descriptors", "is required");
    else level(f.get("descriptors")!.value, "descriptors", rules);
  }
  if (problems.length > 0) throw new RateLimitConfigError(file, problems);
  return rules;
}

/** Envoy's semantics: walk the tree entry by entry (exact value first, then any value); the limit is the last node's. */
export function findLimit(rules: RateLimitRules, entries: { key: string; value: string }[]): RateLimit | undefined {
  let level: RuleLevel = rules;
  let rule: DescriptorRule | undefined;
  for (const { key, value } of entries) {
    rule = level.exact.get(key)?.get(value) ?? level.any.get(key);
    if (!rule) return undefined;
    level = rule;
  }
  return rule?.rateLimit;
}
