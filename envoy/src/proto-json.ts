// Strict validation of a JSON value (parsed YAML) against a protobuf message
// type, following the proto3 JSON mapping as Envoy applies it to a bootstrap:
// unknown fields, wrong types, bad enum values, two members of one oneof,
// deprecated fields and unresolvable Any type URLs are errors. Every
// google.protobuf.Any (typed_config, typed_extension_protocol_options,
// typed_per_filter_config, ...) is resolved by its "@type" and validated as
// that message. A subset of the protoc-gen-validate rules Envoy enforces is
// checked too: required messages and oneofs, string min_len, repeated
// min/max_items, map min_pairs, numeric bounds.

import protobuf from "protobufjs";

export interface ProtoIssue {
  /** Where in the document, e.g. static_resources.clusters[0].connect_timeout. */
  path: string;
  message: string;
}

type Json = unknown;
type Rules = Record<string, any>;

const WRAPPERS: Record<string, string> = {
  ".google.protobuf.DoubleValue": "double",
  ".google.protobuf.FloatValue": "float",
  ".google.protobuf.Int64Value": "int64",
  ".google.protobuf.UInt64Value": "uint64",
  ".google.protobuf.Int32Value": "int32",
  ".google.protobuf.UInt32Value": "uint32",
  ".google.protobuf.BoolValue": "bool",
  ".google.protobuf.StringValue": "string",
  ".google.protobuf.BytesValue": "bytes",
};
const TYPED_STRUCTS = new Set([".udpa.type.v1.TypedStruct", ".xds.type.v3.TypedStruct"]);
const DURATION_RE = /^-?\d{1,12}(\.\d{1,9})?s$/;
const TIMESTAMP_RE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$/;
const BASE64_RE = /^[A-Za-z0-9+/_-]*={0,2}$/;

const isObject = (v: Json): v is Record<string, Json> => typeof v === "object" && v !== null && !Array.isArray(v);
const camel = (name: string) => name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
const describe = (v: Json) => (v === null ? "null" : Array.isArray(v) ? "a list" : typeof v === "object" ? "an object" : `${typeof v} ${JSON.stringify(v)}`);
const child = (path: string, key: string) => (path ? `${path}.${key}` : key);
const entry = (path: string, key: string) => `${path}[${JSON.stringify(key)}]`;

/** The protoc-gen-validate rules of a field or oneof, merged from its parsed options. */
// protobufjs types parsedOptions as a record; at run time it is a list of single-option records.
const parsedOptions = (item: protobuf.ReflectionObject): Record<string, any>[] => (item.parsedOptions as unknown as Record<string, any>[] | undefined) ?? [];
function rulesOf(item: protobuf.ReflectionObject): Rules {
  const out: Rules = {};
  for (const option of parsedOptions(item)) if (option["(validate.rules)"]) Object.assign(out, option["(validate.rules)"]);
  return out;
}
const requiredOneof = (oneof: protobuf.OneOf) => parsedOptions(oneof).some((o) => o["(validate.required)"] === true);

const INT_RANGES: Record<string, [bigint, bigint]> = {
  int32: [-(2n ** 31n), 2n ** 31n - 1n], sint32: [-(2n ** 31n), 2n ** 31n - 1n], sfixed32: [-(2n ** 31n), 2n ** 31n - 1n],
  uint32: [0n, 2n ** 32n - 1n], fixed32: [0n, 2n ** 32n - 1n],
  int64: [-(2n ** 63n), 2n ** 63n - 1n], sint64: [-(2n ** 63n), 2n ** 63n - 1n], sfixed64: [-(2n ** 63n), 2n ** 63n - 1n],
  uint64: [0n, 2n ** 64n - 1n], fixed64: [0n, 2n ** 64n - 1n],
};

export class ProtoJsonValidator {
  private readonly fieldIndex = new Map<protobuf.Type, Map<string, protobuf.Field>>();

  constructor(private readonly root: protobuf.Root) {}

  /** Validates `value` as the message `typeName` (e.g. envoy.config.bootstrap.v3.Bootstrap). */
  validate(typeName: string, value: Json): ProtoIssue[] {
    const issues: ProtoIssue[] = [];
    this.message(this.root.lookupType(typeName), value, "", issues);
    return issues;
  }

  private fields(type: protobuf.Type): Map<string, protobuf.Field> {
    let index = this.fieldIndex.get(type);
    if (!index) {
      index = new Map();
      for (const field of type.fieldsArray) {
        index.set(field.name, field);
        index.set(camel(field.name), field);
      }
      this.fieldIndex.set(type, index);
    }
    return index;
  }

  private resolveTypeUrl(url: string): protobuf.Type | undefined {
    const name = url.slice(url.lastIndexOf("/") + 1);
    try {
      return name ? this.root.lookupType(name) : undefined;
    } catch {
      return undefined;
    }
  }

  private message(type: protobuf.Type, value: Json, path: string, issues: ProtoIssue[]): void {
    const fail = (message: string) => issues.push({ path: path || "(document)", message });
    const name = type.fullName;
    if (name === ".google.protobuf.Duration") {
      if (typeof value !== "string" || !DURATION_RE.test(value)) fail(`expected a duration like "1.5s", got ${describe(value)}`);
      return;
    }
    if (name === ".google.protobuf.Timestamp") {
      if (typeof value !== "string" || !TIMESTAMP_RE.test(value)) fail(`expected an RFC 3339 timestamp, got ${describe(value)}`);
      return;
    }
    if (name === ".google.protobuf.Struct") {
      if (!isObject(value)) fail(`expected an object (Struct), got ${describe(value)}`);
      return;
    }
    if (name === ".google.protobuf.ListValue") {
      if (!Array.isArray(value)) fail(`expected a list (ListValue), got ${describe(value)}`);
      return;
    }
    if (name === ".google.protobuf.Value") return;
    if (name === ".google.protobuf.FieldMask") {
      if (typeof value !== "string") fail(`expected a field mask string, got ${describe(value)}`);
      return;
    }
    if (WRAPPERS[name]) {
      this.scalar(WRAPPERS[name], value, path, issues);
      return;
    }
    if (!isObject(value)) {
      fail(`expected an object (${name.slice(1)}), got ${describe(value)}`);
      return;
    }
    if (name === ".google.protobuf.Any") {
      this.any(value, path, issues);
      return;
    }
    const fields = this.fields(type);
    const present = new Set<protobuf.Field>();
    for (const [key, v] of Object.entries(value)) {
      const field = fields.get(key);
      if (!field) {
        issues.push({ path: child(path, key), message: `unknown field "${key}" in ${name.slice(1)}` });
        continue;
      }
      if (present.has(field)) {
        issues.push({ path: child(path, key), message: `field "${field.name}" given twice (as ${field.name} and ${camel(field.name)})` });
        continue;
      }
      if (v === null) continue;
      present.add(field);
      if (field.options?.deprecated === true) {
        issues.push({ path: child(path, key), message: `field "${field.name}" of ${name.slice(1)} is deprecated` });
      }
      this.field(field, v, child(path, key), issues);
    }
    for (const field of type.fieldsArray) {
      // A member of a oneof is only checked when it is the member set.
      if (present.has(field) || field.partOf) continue;
      const rules = rulesOf(field);
      if (rules.message?.required) {
        issues.push({ path: child(path, field.name), message: `required field "${field.name}" of ${name.slice(1)} is missing` });
      } else if (field.repeated || field instanceof protobuf.MapField) {
        if (Number(rules.repeated?.min_items ?? 0) > 0 || Number(rules.map?.min_pairs ?? 0) > 0) {
          issues.push({ path: child(path, field.name), message: `required field "${field.name}" of ${name.slice(1)} is missing (needs at least one entry)` });
        }
      } else if (!field.resolvedType) {
        // protoc-gen-validate checks an absent scalar as its default ("" or 0), as Envoy does.
        const scalarRules = rules[field.type];
        if (scalarRules && !scalarRules.ignore_empty) {
          const before = issues.length;
          this.scalar(field.type, field.type === "string" || field.type === "bytes" ? "" : field.type === "bool" ? false : 0, child(path, field.name), issues, rules);
          for (const issue of issues.slice(before)) issue.message = `field "${field.name}" of ${name.slice(1)} is missing: ${issue.message}`;
        }
      }
    }
    for (const oneof of type.oneofsArray) {
      const members = oneof.fieldsArray.filter((f) => present.has(f));
      if (members.length > 1) {
        fail(`fields ${members.map((f) => `"${f.name}"`).join(" and ")} are members of oneof "${oneof.name}": set at most one`);
      } else if (members.length === 0 && requiredOneof(oneof)) {
        fail(`one of ${oneof.fieldsArray.map((f) => `"${f.name}"`).join(", ")} is required (oneof "${oneof.name}")`);
      }
    }
  }

  private any(value: Record<string, Json>, path: string, issues: ProtoIssue[]): void {
    const url = value["@type"];
    if (typeof url !== "string") {
      issues.push({ path: child(path, "@type"), message: "an Any value needs a \"@type\" type URL" });
      return;
    }
    const type = this.resolveTypeUrl(url);
    if (!type) {
      issues.push({ path: child(path, "@type"), message: `unknown type URL "${url}" (no such message in Envoy's API protos)` });
      return;
    }
    const { "@type": _, ...rest } = value;
    const at = `${path}(${type.fullName.slice(1)})`;
    if (TYPED_STRUCTS.has(type.fullName)) {
      this.message(type, rest, at, issues);
      const inner = typeof rest.type_url === "string" ? this.resolveTypeUrl(rest.type_url) : undefined;
      if (!inner) issues.push({ path: child(at, "type_url"), message: `unknown type URL ${JSON.stringify(rest.type_url)}` });
      else if (rest.value !== undefined) this.message(inner, rest.value, child(at, "value"), issues);
      return;
    }
    const special = type.fullName.startsWith(".google.protobuf.") && type.fullName !== ".google.protobuf.Empty";
    if (special) {
      const keys = Object.keys(rest);
      if (keys.length !== 1 || keys[0] !== "value") issues.push({ path: at, message: `an Any holding ${type.fullName.slice(1)} takes exactly one field, "value"` });
      else this.message(type, rest.value, child(at, "value"), issues);
      return;
    }
    this.message(type, rest, at, issues);
  }

  private field(field: protobuf.Field, value: Json, path: string, issues: ProtoIssue[]): void {
    const rules = rulesOf(field);
    if (field instanceof protobuf.MapField) {
      if (!isObject(value)) {
        issues.push({ path, message: `expected an object (map), got ${describe(value)}` });
        return;
      }
      const pairs = Object.entries(value);
      if (rules.map?.min_pairs !== undefined && pairs.length < Number(rules.map.min_pairs)) {
        issues.push({ path, message: `expected at least ${rules.map.min_pairs} entries` });
      }
      for (const [key, v] of pairs) {
        if (field.keyType !== "string" && field.keyType !== "bool" && !/^-?\d+$/.test(key)) {
          issues.push({ path: entry(path, key), message: `map key must be a ${field.keyType}` });
        }
        this.single(field, v, entry(path, key), issues, {});
      }
      return;
    }
    if (field.repeated) {
      if (!Array.isArray(value)) {
        issues.push({ path, message: `expected a list, got ${describe(value)}` });
        return;
      }
      const r = rules.repeated ?? {};
      if (r.min_items !== undefined && value.length < Number(r.min_items)) issues.push({ path, message: `expected at least ${r.min_items} items, got ${value.length}` });
      if (r.max_items !== undefined && value.length > Number(r.max_items)) issues.push({ path, message: `expected at most ${r.max_items} items, got ${value.length}` });
      value.forEach((v, i) => this.single(field, v, `${path}[${i}]`, issues, r.items ?? {}));
      return;
    }
    this.single(field, value, path, issues, rules);
  }

  private single(field: protobuf.Field, value: Json, path: string, issues: ProtoIssue[], rules: Rules): void {
    const resolved = field.resolvedType;
    if (resolved instanceof protobuf.Type) {
      this.message(resolved, value, path, issues);
    } else if (resolved instanceof protobuf.Enum) {
      this.enumValue(resolved, value, path, issues);
    } else {
      this.scalar(field.type, value, path, issues, rules);
    }
  }

  private enumValue(type: protobuf.Enum, value: Json, path: string, issues: ProtoIssue[]): void {
    const names = Object.keys(type.values);
    if (typeof value === "string") {
      if (!(value in type.values)) issues.push({ path, message: `bad enum value "${value}" for ${type.fullName.slice(1)} (expected one of ${names.join(", ")})` });
      else if (type.valuesOptions?.[value]?.deprecated === true) issues.push({ path, message: `enum value "${value}" is deprecated` });
    } else if (typeof value === "number") {
      if (!Object.values(type.values).includes(value)) issues.push({ path, message: `bad enum number ${value} for ${type.fullName.slice(1)}` });
    } else {
      issues.push({ path, message: `expected an enum name of ${type.fullName.slice(1)}, got ${describe(value)}` });
    }
  }

  private scalar(kind: string, value: Json, path: string, issues: ProtoIssue[], rules: Rules = {}): void {
    const fail = (message: string) => issues.push({ path, message });
    if (kind === "string") {
      if (typeof value !== "string") return void fail(`expected a string, got ${describe(value)}`);
      const r = rules.string ?? {};
      if (r.min_len !== undefined && value.length < Number(r.min_len)) fail(`expected at least ${r.min_len} characters`);
      if (r.max_len !== undefined && value.length > Number(r.max_len)) fail(`expected at most ${r.max_len} characters`);
      return;
    }
    if (kind === "bool") {
      if (typeof value !== "boolean") fail(`expected true or false, got ${describe(value)}`);
      return;
    }
    if (kind === "bytes") {
      if (typeof value !== "string" || !BASE64_RE.test(value)) fail(`expected base64 bytes, got ${describe(value)}`);
      return;
    }
    if (kind === "double" || kind === "float") {
      const ok = (typeof value === "number" && Number.isFinite(value)) || value === "NaN" || value === "Infinity" || value === "-Infinity"
        || (typeof value === "string" && value.trim() !== "" && Number.isFinite(Number(value)));
      if (!ok) return void fail(`expected a number, got ${describe(value)}`);
      if (typeof value === "number") this.bounds(value, rules[kind] ?? {}, fail);
      return;
    }
    const range = INT_RANGES[kind];
    if (!range) return void fail(`cannot check values of type ${kind}`);
    let n: bigint;
    if (typeof value === "number" && Number.isInteger(value)) n = BigInt(value);
    else if (typeof value === "string" && /^-?\d+$/.test(value)) n = BigInt(value);
    else return void fail(`expected a whole number (${kind}), got ${describe(value)}`);
    if (n < range[0] || n > range[1]) return void fail(`${n} is out of range for ${kind}`);
    this.bounds(Number(n), rules[kind] ?? {}, fail);
  }

  private bounds(n: number, r: Rules, fail: (message: string) => void): void {
    if (r.gt !== undefined && !(n > Number(r.gt))) fail(`expected more than ${r.gt}, got ${n}`);
    if (r.gte !== undefined && !(n >= Number(r.gte))) fail(`expected at least ${r.gte}, got ${n}`);
    if (r.lt !== undefined && !(n < Number(r.lt))) fail(`expected less than ${r.lt}, got ${n}`);
    if (r.lte !== undefined && !(n <= Number(r.lte))) fail(`expected at most ${r.lte}, got ${n}`);
  }
}
