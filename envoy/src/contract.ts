// The gRPC services and methods of the contract in proto/, read from the
// .proto files, so the edge checks cover methods added later too.

import { readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import protobuf from "protobufjs";
import type { ServiceMethods } from "./semantics.js";

const PROTO_DIR = resolve(import.meta.dirname, "../../proto");

export function contractServices(dir = PROTO_DIR): ServiceMethods {
  const files = readdirSync(join(dir, "seckill/v1")).filter((f) => f.endsWith(".proto")).map((f) => `seckill/v1/${f}`);
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => (target in protobuf.common ? target : join(dir, target));
  root.loadSync(files, { keepCase: true });
  const out: ServiceMethods = {};
  const visit = (ns: protobuf.NamespaceBase) => {
    for (const nested of ns.nestedArray) {
      if (nested instanceof protobuf.Service) out[nested.fullName.slice(1)] = nested.methodsArray.map((m) => m.name);
      else if (nested instanceof protobuf.Namespace) visit(nested);
    }
  };
  visit(root);
  return out;
}
