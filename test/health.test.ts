// grpc.health.v1 and server reflection on every service of a real stack, and
// NOT_SERVING announced to health watchers while a server drains on shutdown.
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  credentials,
  loadPackageDefinition,
  type Metadata,
  status,
  type CallOptions,
  type Client,
  type ClientDuplexStream,
  type ClientReadableStream,
  type ClientUnaryCall,
  type ServiceClientConstructor,
  type ServiceError,
} from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { protoPath as healthProtoPath } from "grpc-health-check";
import { callUnary } from "@seckill/sdk";
import { eventually, startTestStack, type TestStack } from "./support/stack.js";

const REFLECTION_PROTO = fileURLToPath(new URL("../node_modules/@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto", import.meta.url));
const LOAD_OPTIONS: protoLoader.Options = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };

type ServingStatus = "UNKNOWN" | "SERVING" | "NOT_SERVING" | "SERVICE_UNKNOWN";

interface HealthClient extends Client {
  Check(
    request: { service: string },
    metadata: Metadata,
    options: Partial<CallOptions>,
    callback: (error: ServiceError | null, response: { status: ServingStatus }) => void,
  ): ClientUnaryCall;
  Watch(request: { service: string }, options?: Partial<CallOptions>): ClientReadableStream<{ status: ServingStatus }>;
}

interface ReflectionResponse {
  message_response: "list_services_response" | "file_descriptor_response" | "error_response" | string;
  list_services_response?: { service: { name: string }[] };
  file_descriptor_response?: { file_descriptor_proto: Buffer[] };
  error_response?: { error_code: number; error_message: string };
}

interface ReflectionClient extends Client {
  ServerReflectionInfo(options?: Partial<CallOptions>): ClientDuplexStream<Record<string, string>, ReflectionResponse>;
}

function clientConstructor(file: string, name: string): ServiceClientConstructor {
  let node: unknown = loadPackageDefinition(protoLoader.loadSync(file, LOAD_OPTIONS));
  for (const part of name.split(".")) node = (node as Record<string, unknown>)[part];
  if (typeof node !== "function") throw new Error(`no service ${name} in ${file}`);
  return node as ServiceClientConstructor;
}
const Health = clientConstructor(healthProtoPath, "grpc.health.v1.Health");
const Reflection = clientConstructor(REFLECTION_PROTO, "grpc.reflection.v1.ServerReflection");

const clients: Client[] = [];
const healthClient = (address: string) => {
  const client = new Health(address, credentials.createInsecure()) as unknown as HealthClient;
  clients.push(client);
  return client;
};
const reflectionClient = (address: string) => {
  const client = new Reflection(address, credentials.createInsecure()) as unknown as ReflectionClient;
  clients.push(client);
  return client;
};

const check = async (address: string, service: string) => (await callUnary(healthClient(address), "Check", { service }, { deadlineMs: 3000 })).status;

/** One request on the bidi reflection stream, one answer. */
function reflect(address: string, request: Record<string, string>): Promise<ReflectionResponse> {
  return new Promise((resolve, reject) => {
    const call = reflectionClient(address).ServerReflectionInfo({ deadline: Date.now() + 5000 });
    call.on("data", (response: ReflectionResponse) => {
      resolve(response);
      call.end();
    });
    call.on("error", reject);
    call.write(request);
  });
}

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack();
});
afterAll(async () => {
  for (const c of clients) c.close();
  await stack?.stop();
});

const SERVED = {
  inventory: ["seckill.v1.SaleService", "seckill.v1.InventoryService"],
  order: ["seckill.v1.OrderService"],
  writer: ["seckill.v1.DeadLetterService"],
};
const addressOf = (name: keyof typeof SERVED) => stack[name].address;

describe("grpc.health.v1", () => {
  it.each(Object.keys(SERVED) as (keyof typeof SERVED)[])("reports %s SERVING for the server and each of its services", async (name) => {
    for (const service of ["", ...SERVED[name]]) {
      expect(await check(addressOf(name), service), `${name} "${service}"`).toBe("SERVING");
    }
  });

  it("answers NOT_FOUND for a service a server does not serve", async () => {
    const error = await check(addressOf("order"), "seckill.v1.InventoryService").catch((e: ServiceError) => e);
    expect((error as ServiceError).code).toBe(status.NOT_FOUND);
  });
});

describe("server reflection", () => {
  it.each(Object.keys(SERVED) as (keyof typeof SERVED)[])("lists exactly the services %s serves, plus health", async (name) => {
    const response = await reflect(addressOf(name), { list_services: "" });
    expect(response.message_response).toBe("list_services_response");
    const listed = response.list_services_response!.service.map((s) => s.name).sort();
    expect(listed).toEqual([...SERVED[name], "grpc.health.v1.Health"].sort());
  });

  it("describes a served service, so tools such as grpcurl can call it", async () => {
    const response = await reflect(addressOf("order"), { file_containing_symbol: "seckill.v1.OrderService" });
    expect(response.message_response).toBe("file_descriptor_response");
    const files = response.file_descriptor_response!.file_descriptor_proto;
    expect(files.length).toBeGreaterThan(0);
    expect(Buffer.concat(files).toString("latin1")).toContain("WatchOrder");
  });
});

describe("shutdown", () => {
  // A stack of its own: stopping a server would break the shared one.
  let draining: TestStack;
  beforeAll(async () => {
    draining = await startTestStack({ SHUTDOWN_DRAIN_DELAY_MS: "2000" });
  });
  afterAll(async () => {
    await draining?.stop();
  });

  it("tells health watchers NOT_SERVING while the order server drains, before it stops taking calls", async () => {
    const address = draining.order.address;
    const health = healthClient(address);
    const seen: ServingStatus[] = [];
    const watch = health.Watch({ service: "" }, { deadline: Date.now() + 20_000 });
    const watchEnded = new Promise<void>((resolve) => {
      watch.on("data", (message: { status: ServingStatus }) => seen.push(message.status));
      watch.on("error", () => resolve());
      watch.on("end", () => resolve());
    });
    const serviceWatch = health.Watch({ service: "seckill.v1.OrderService" }, { deadline: Date.now() + 20_000 });
    const serviceSeen: ServingStatus[] = [];
    serviceWatch.on("data", (message: { status: ServingStatus }) => serviceSeen.push(message.status));
    serviceWatch.on("error", () => undefined);
    await eventually(async () => seen.length > 0 && serviceSeen.length > 0, 5000, "the first health messages");
    expect(seen).toEqual(["SERVING"]);
    expect(serviceSeen).toEqual(["SERVING"]);

    const started = Date.now();
    const stopped = draining.order.stop();
    await eventually(async () => seen.includes("NOT_SERVING") && serviceSeen.includes("NOT_SERVING"), 2000, "NOT_SERVING on the watch");
    const announcedAfterMs = Date.now() - started;
    expect(announcedAfterMs).toBeLessThan(2000);
    expect(seen).toEqual(["SERVING", "NOT_SERVING"]);
    // Still answering during the drain delay, and saying it is going away.
    expect(await check(address, "")).toBe("NOT_SERVING");

    // Watchers leave (as a load balancer would), so the server need not wait out its grace period.
    watch.cancel();
    serviceWatch.cancel();
    await watchEnded;
    await stopped;
    expect(Date.now() - started).toBeGreaterThanOrEqual(1950);
    const after = await check(address, "").catch((e: ServiceError) => e);
    expect((after as ServiceError).code).toBe(status.UNAVAILABLE);
  });
});
