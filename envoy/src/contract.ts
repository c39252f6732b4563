// The gRPC services and methods of the contract in proto/, read from the
// .proto files, so the edge checks cover methods added later too; and which
// methods have a google.api.http rule (served as JSON by the transcoder).

import { readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { createRequire } from "node:module";
import { dirname } from "node:path";
import protobuf from "protobufjs";
import type { Contract } from "./semantics.js";

const PROTO_DIR = resolve(import.meta.dirname, "../../proto");
// google/protobuf/descriptor.proto, imported by google/api/annotations.proto.
const PROTOBUFJS_DIR = dirname(createRequire(import.meta.url).resolve("protobufjs/package.json"));

export function readContract(dir = PROTO_DIR): Contract {
  const files = readdirSync(join(dir, "seckill/v1"))
    .filter((f) => f.endsWith(".proto"))
    .map((f) => `seckill/v1/${f}`);
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => {
    if (target in protobuf.common) return target;
    return target.startsWith("google/protobuf/") ? join(PROTOBUFJS_DIR, target) : join(dir, target);
  };
  root.loadSync(files, { keepCase: true });
  const contract: Contract = { services: {}, httpRules: [] };
  const visit = (ns: protobuf.NamespaceBase) => {
    for (const nested of ns.nestedArray) {
      if (nested instanceof protobuf.Service) {
        const service = nested.fullName.slice(1);
        contract.services[service] = nested.methodsArray.map((m) => m.name);
        for (const m of nested.methodsArray) {
          if (Object.keys(m.options ?? {}).some((k) => k.startsWith("(google.api.http)"))) contract.httpRules.push(`/${service}/${m.name}`);
        }
      } else if (nested instanceof protobuf.Namespace) visit(nested);
    }
  };
  visit(root);
  return contract;
}
