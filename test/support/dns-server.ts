// A DNS server on loopback whose A records a test sets and changes, as a
// headless Service's answer changes when pods come and go. It answers A
// queries for its names from the current list (TTL 0), any other query for
// them with no records, and names it does not hold with NXDOMAIN.
import { createSocket } from "node:dgram";

export interface TestDnsServer {
  port: number;
  /** The IPv4 addresses a name resolves to from now on. */
  setAddresses(name: string, addresses: string[]): void;
  /** A queries answered for the name so far. */
  lookups(name: string): number;
  close(): Promise<void>;
}

const TYPE_A = 1;
const HEADER_BYTES = 12;

export async function startDnsServer(): Promise<TestDnsServer> {
  const records = new Map<string, string[]>();
  const answered = new Map<string, number>();
  const socket = createSocket("udp4");
  socket.on("message", (query, peer) => {
    const question = readQuestion(query);
    if (!question) return;
    const addresses = records.get(question.name);
    const answers = question.type === TYPE_A ? (addresses ?? []) : [];
    if (question.type === TYPE_A && addresses) answered.set(question.name, (answered.get(question.name) ?? 0) + 1);
    const header = Buffer.alloc(HEADER_BYTES);
    query.copy(header, 0, 0, 2); // id
    header.writeUInt16BE(0x8180 | (addresses ? 0 : 3), 2); // a response, recursion available; NXDOMAIN for an unknown name
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(answers.length, 6);
    const answerRecords = answers.map((address) => {
      const record = Buffer.alloc(16);
      record.writeUInt16BE(0xc000 | HEADER_BYTES, 0); // the name: a pointer to the question's
      record.writeUInt16BE(TYPE_A, 2);
      record.writeUInt16BE(1, 4); // IN
      record.writeUInt32BE(0, 6); // TTL
      record.writeUInt16BE(4, 10);
      Buffer.from(address.split(".").map(Number)).copy(record, 12);
      return record;
    });
    socket.send(Buffer.concat([header, query.subarray(HEADER_BYTES, question.end), ...answerRecords]), peer.port, peer.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  return {
    port: socket.address().port,
    setAddresses: (name, addresses) => records.set(name.toLowerCase(), addresses),
    lookups: (name) => answered.get(name.toLowerCase()) ?? 0,
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}

/** The first question of a query: its name (lower case), type, and where it ends. */
function readQuestion(message: Buffer): { name: string; type: number; end: number } | undefined {
  if (message.length < HEADER_BYTES || message.readUInt16BE(4) < 1) return undefined;
  const labels: string[] = [];
  let offset = HEADER_BYTES;
  while (offset < message.length && message[offset] !== 0) {
    const length = message[offset];
    labels.push(message.toString("ascii", offset + 1, offset + 1 + length));
    offset += 1 + length;
  }
  if (offset + 5 > message.length) return undefined;
  return { name: labels.join(".").toLowerCase(), type: message.readUInt16BE(offset + 1), end: offset + 5 };
}
