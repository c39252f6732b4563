// Unknown fields: the models' validators accept fields the Kubernetes API does
// not know (the API server would drop them, or refuse them with strict field
// validation), so a typo such as `readinesProbe` would pass them. This walks an
// object along the TypeScript declaration of its kind (models.ts KindTypes,
// read with the compiler API) and reports every field the declaration lacks.
import { fileURLToPath } from "node:url";
import ts from "typescript";
import type { KindKey } from "./models.js";

const MODELS_FILE = fileURLToPath(new URL("./models.ts", import.meta.url));

interface Declarations {
  checker: ts.TypeChecker;
  kinds: Map<string, ts.Type>;
}

let loaded: Declarations | undefined;

function declarations(): Declarations {
  if (loaded) return loaded;
  const program = ts.createProgram([MODELS_FILE], {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    strict: true,
    skipLibCheck: true,
    noEmit: true,
    types: [],
  });
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(MODELS_FILE);
  const decl = source?.statements.find((s): s is ts.InterfaceDeclaration => ts.isInterfaceDeclaration(s) && s.name.text === "KindTypes");
  if (!decl) throw new Error(`interface KindTypes not found in ${MODELS_FILE}`);
  const kinds = new Map<string, ts.Type>();
  for (const prop of checker.getTypeAtLocation(decl).getProperties()) {
    kinds.set(prop.name, checker.getTypeOfSymbolAtLocation(prop, decl));
  }
  loaded = { checker, kinds };
  return loaded;
}

/** Paths (JSON-pointer-like, from the object's root) of fields the kind's declaration does not have. */
export function unknownFields(kind: KindKey, object: unknown): string[] {
  const { checker, kinds } = declarations();
  const type = kinds.get(kind);
  if (!type) throw new Error(`no declaration for ${kind}`);
  const found: string[] = [];
  walk(checker, object, type, "", found);
  return found;
}

function walk(checker: ts.TypeChecker, value: unknown, declared: ts.Type, path: string, found: string[]): void {
  if (value === null || typeof value !== "object") return;
  const type = objectPart(checker, checker.getNonNullableType(declared));
  if (!type) return;
  if (Array.isArray(value)) {
    if (!checker.isArrayType(type)) return;
    const element = checker.getTypeArguments(type as ts.TypeReference)[0];
    for (const [i, item] of value.entries()) walk(checker, item, element, `${path}/${i}`, found);
    return;
  }
  const index = checker.getIndexTypeOfType(type, ts.IndexKind.String);
  for (const [key, child] of Object.entries(value)) {
    const prop = type.getProperty(key);
    if (prop) {
      const decl = prop.valueDeclaration ?? prop.declarations?.[0];
      walk(checker, child, decl ? checker.getTypeOfSymbolAtLocation(prop, decl) : checker.getAnyType(), `${path}/${key}`, found);
    } else if (index) {
      walk(checker, child, index, `${path}/${key}`, found);
    } else if (type.getProperties().length > 0) {
      found.push(`${path}/${key}`);
    }
  }
}

/** The object type to walk into: the one object member of a union (IntOrString and the like have none). */
function objectPart(checker: ts.TypeChecker, type: ts.Type): ts.Type | undefined {
  if (type.flags & (ts.TypeFlags.Any | ts.TypeFlags.Unknown)) return undefined;
  if (type.isUnion()) {
    const objects = type.types.filter((t) => t.flags & ts.TypeFlags.Object);
    return objects.length === 1 ? objectPart(checker, objects[0]) : undefined;
  }
  return type.flags & ts.TypeFlags.Object ? type : undefined;
}
