// Every object against the Kubernetes API schema of its kind (models.ts):
// unknown kinds, wrong types, missing required fields, bad enum values and
// unknown fields all fail.
import { isKnownKind, kindKeyOf, MODELS } from "./models.js";
import { problem, type K8sObject, type Problem } from "./objects.js";
import { unknownFields } from "./unknown-fields.js";

interface ValidationError {
  instancePath?: string;
  message?: string;
}

export function checkSchema(objects: K8sObject[]): Problem[] {
  return objects.flatMap((o) => {
    const key = kindKeyOf(o);
    if (!isKnownKind(key)) return [problem(o, undefined, `no schema for ${key}: use a kind listed in k8s/check/models.ts`)];
    const found: Problem[] = [];
    try {
      new MODELS[key](withPlainBase64(o) as never).validate();
    } catch (error) {
      const errors = (error as { errors?: ValidationError[] }).errors;
      if (!errors) throw error;
      for (const e of errors) found.push(problem(o, e.instancePath || "/", `schema: ${e.message ?? "invalid"}`));
    }
    for (const path of unknownFields(key, o)) found.push(problem(o, path, "schema: unknown field"));
    return found;
  });
}

/**
 * kustomize wraps long base64 values (Secret data, ConfigMap binaryData) over
 * lines; the API server's decoder skips the line breaks, the schema's "byte"
 * format does not: compare them unwrapped.
 */
function withPlainBase64(o: K8sObject): K8sObject {
  const unwrap = (m: unknown) =>
    m && typeof m === "object" ? Object.fromEntries(Object.entries(m).map(([k, v]) => [k, typeof v === "string" ? v.replace(/[\r\n]/g, "") : v])) : m;
  if (o.kind === "Secret" && o.data) return { ...o, data: unwrap(o.data) };
  if (o.kind === "ConfigMap" && o.binaryData) return { ...o, binaryData: unwrap(o.binaryData) };
  return o;
}
