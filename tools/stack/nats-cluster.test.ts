// The local NATS cluster: three nodes with JetStream that a test can kill and
// start again, and a replicated stream that keeps its messages when its
// leader dies.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectNats } from "../../services/common/event-bus.js";
import { eventually } from "./fixtures.js";
import { startNatsCluster, type NatsCluster } from "./nats-cluster.js";

let dir: string;
let cluster: NatsCluster;
let nc: NatsConnection;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "seckill-nats-cluster-"));
  cluster = await startNatsCluster({ stateDir: dir });
  nc = await connectNats(cluster.url, "nats-cluster-test");
});
afterAll(async () => {
  await nc?.close();
  await cluster?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe("a local NATS cluster", () => {
  it("runs three JetStream nodes reachable through one comma-separated URL", () => {
    expect(cluster.nodes).toEqual(["nats-1", "nats-2", "nats-3"]);
    expect(cluster.url.split(",")).toEqual(cluster.nodes.map((n) => cluster.urlOf(n)));
    for (const node of cluster.nodes) expect(cluster.pid(node)).toBeGreaterThan(0);
  });

  it("keeps a three-replica stream's messages when its leader is killed, and takes the leader back as a follower", async () => {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: "cluster_test", subjects: ["cluster-test.>"], num_replicas: 3 });
    const js = jsm.jetstream();
    for (let i = 0; i < 20; i++) await js.publish("cluster-test.x", new TextEncoder().encode(String(i)));

    const leader = await cluster.streamLeader("cluster_test");
    expect(cluster.nodes).toContain(leader);
    await cluster.kill(leader);
    expect(cluster.pid(leader)).toBeUndefined();

    const next = await cluster.streamLeader("cluster_test");
    expect(next).not.toBe(leader);
    await eventually(async () => (await jsm.streams.info("cluster_test").catch(() => undefined))?.state.messages === 20, 15_000, "the stream on the new leader");
    // Writes go on with two of three nodes, and the old leader catches up once it is back.
    await js.publish("cluster-test.x", new TextEncoder().encode("after"), { timeout: 5000 });

    await cluster.restart(leader);
    expect(cluster.pid(leader)).toBeGreaterThan(0);
    await eventually(
      async () => {
        const info = await jsm.streams.info("cluster_test").catch(() => undefined);
        return info?.state.messages === 21 && (info.cluster?.replicas ?? []).some((r) => r.name === leader && r.current);
      },
      20_000,
      `${leader} to be a current replica again`,
    );
  });
});

describe("a local NATS cluster with its routes through fault proxies", () => {
  let proxied: NatsCluster;
  let proxiedDir: string;
  const clients: NatsConnection[] = [];
  beforeAll(async () => {
    proxiedDir = await mkdtemp(join(tmpdir(), "seckill-nats-routes-"));
    proxied = await startNatsCluster({ stateDir: proxiedDir, proxyRoutes: true });
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await proxied?.stop();
    await rm(proxiedDir, { recursive: true, force: true });
  });

  it("elects a new leader on the other two when the leader's routes are cut, and the cut node catches up once healed", async () => {
    const stream = "routes_test";
    const first = await connectNats(proxied.url, "nats-routes-test");
    clients.push(first);
    const jsm = await jetstreamManager(first);
    await jsm.streams.add({ name: stream, subjects: ["routes-test.>"], num_replicas: 3 });
    for (let i = 0; i < 10; i++) await jsm.jetstream().publish("routes-test.x", new TextEncoder().encode(String(i)));

    const leader = await proxied.streamLeader(stream);
    const cut = proxied.routeProxies(leader);
    expect(cut).toHaveLength(4); // to and from each of the two others
    for (const proxy of cut) proxy.blackhole();

    // Asked through a node still in the majority: the cut node may go on calling itself leader.
    const other = proxied.nodes.find((n) => n !== leader)!;
    const majority = await connectNats(proxied.urlOf(other), "nats-routes-majority");
    clients.push(majority);
    const mjsm = await jetstreamManager(majority, { timeout: 2000, checkAPI: false });
    let next: string | undefined;
    await eventually(
      async () => {
        next = (await mjsm.streams.info(stream).catch(() => undefined))?.cluster?.leader;
        return next !== undefined && next !== leader;
      },
      15_000,
      "a new stream leader among the other two",
    );
    // Writes go on with two of three nodes while the third is cut off (its replica falls behind).
    await eventually(
      () =>
        mjsm
          .jetstream()
          .publish("routes-test.x", new TextEncoder().encode("during"), { timeout: 2000 })
          .then(() => true)
          .catch(() => false),
      5_000,
      "a write acknowledged by the majority",
    );
    const during = await mjsm.streams.info(stream);
    expect(during.state.messages).toBe(11);
    expect(during.cluster?.replicas?.find((r) => r.name === leader)?.current).not.toBe(true);

    for (const proxy of cut) proxy.heal();
    await eventually(
      async () => {
        const info = await mjsm.streams.info(stream).catch(() => undefined);
        return info?.state.messages === 11 && (info.cluster?.replicas ?? []).some((r) => r.name === leader && r.current);
      },
      20_000,
      `${leader} to be a current replica again`,
    );
  }, 60_000);
});
