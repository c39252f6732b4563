// Finding a stack's own server among several of its kind: by the port it listens on.
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { pidListeningOn } from "./proc.js";

let server: net.Server | undefined;
afterEach(() => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())));

describe("pidListeningOn", () => {
  it("names the process listening on a port", async () => {
    server = net.createServer();
    await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as net.AddressInfo;
    expect(pidListeningOn(port)).toBe(process.pid);
  });

  it("finds nothing on a port no one listens on", async () => {
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
    const { port } = probe.address() as net.AddressInfo;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    expect(pidListeningOn(port)).toBeUndefined();
  });
});
