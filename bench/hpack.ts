// HPACK (RFC 7541), as much as the load generator's HTTP/2 client needs: a
// full decoder for the server's header blocks (static and dynamic table,
// Huffman strings), and a stateless encoder for request headers. The encoder
// never indexes, so blocks encoded apart can be concatenated: a constant part
// encoded once plus per-call fields.

/** A header field: name and value as Latin-1 strings (one char per octet). */
export type HeaderField = readonly [name: string, value: string];

export class HpackError extends Error {}

// Appendix A.
const STATIC_TABLE: readonly HeaderField[] = [
  [":authority", ""],
  [":method", "GET"],
  [":method", "POST"],
  [":path", "/"],
  [":path", "/index.html"],
  [":scheme", "http"],
  [":scheme", "https"],
  [":status", "200"],
  [":status", "204"],
  [":status", "206"],
  [":status", "304"],
  [":status", "400"],
  [":status", "404"],
  [":status", "500"],
  ["accept-charset", ""],
  ["accept-encoding", "gzip, deflate"],
  ["accept-language", ""],
  ["accept-ranges", ""],
  ["accept", ""],
  ["access-control-allow-origin", ""],
  ["age", ""],
  ["allow", ""],
  ["authorization", ""],
  ["cache-control", ""],
  ["content-disposition", ""],
  ["content-encoding", ""],
  ["content-language", ""],
  ["content-length", ""],
  ["content-location", ""],
  ["content-range", ""],
  ["content-type", ""],
  ["cookie", ""],
  ["date", ""],
  ["etag", ""],
  ["expect", ""],
  ["expires", ""],
  ["from", ""],
  ["host", ""],
  ["if-match", ""],
  ["if-modified-since", ""],
  ["if-none-match", ""],
  ["if-range", ""],
  ["if-unmodified-since", ""],
  ["last-modified", ""],
  ["link", ""],
  ["location", ""],
  ["max-forwards", ""],
  ["proxy-authenticate", ""],
  ["proxy-authorization", ""],
  ["range", ""],
  ["referer", ""],
  ["refresh", ""],
  ["retry-after", ""],
  ["server", ""],
  ["set-cookie", ""],
  ["strict-transport-security", ""],
  ["transfer-encoding", ""],
  ["user-agent", ""],
  ["vary", ""],
  ["via", ""],
  ["www-authenticate", ""],
];

// ---------------------------------------------------------------- Huffman

// Appendix B: the code length of each symbol, 0-255 then EOS (256). The code
// is canonical (codes of one length are consecutive, in symbol order, and
// follow on from the shorter ones), so the lengths alone define it.
const HUFFMAN_LENGTHS = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28, 6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6,
  6, 6, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, 13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, 15, 5, 6, 5, 6, 5,
  6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, 20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23,
  23, 21, 22, 23, 22, 23, 23, 24, 22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, 26, 26, 20, 19,
  22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, 20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,
  26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, 30,
];
const EOS = 256;

/**
 * The decoding tree: node n's children are TREE[2n] (bit 0) and TREE[2n + 1]
 * (bit 1); a child ≥ 0 is an inner node, a child < 0 the leaf of symbol -child - 1.
 * 257 leaves make 256 inner nodes, the root being node 0.
 */
const TREE = buildTree();

function buildTree(): Int32Array {
  const tree = new Int32Array(2 * 256);
  const symbols = [...HUFFMAN_LENGTHS.keys()].sort((a, b) => HUFFMAN_LENGTHS[a] - HUFFMAN_LENGTHS[b] || a - b);
  let nodes = 1;
  let code = 0;
  let length = HUFFMAN_LENGTHS[symbols[0]];
  for (const symbol of symbols) {
    code *= 2 ** (HUFFMAN_LENGTHS[symbol] - length);
    length = HUFFMAN_LENGTHS[symbol];
    let node = 0;
    for (let bit = length - 1; bit > 0; bit--) {
      const slot = 2 * node + (Math.floor(code / 2 ** bit) & 1);
      if (tree[slot] === 0) tree[slot] = nodes++;
      node = tree[slot];
    }
    tree[2 * node + (code & 1)] = -symbol - 1;
    code++;
  }
  return tree;
}

let scratch = Buffer.allocUnsafe(256);

function huffmanDecode(input: Buffer, start: number, end: number): string {
  // Every symbol takes at least 5 bits.
  const most = Math.ceil(((end - start) * 8) / 5);
  if (scratch.length < most) scratch = Buffer.allocUnsafe(most * 2);
  let out = 0;
  let node = 0;
  let bitsSinceSymbol = 0;
  let allOnes = true;
  for (let i = start; i < end; i++) {
    const byte = input[i];
    for (let bit = 7; bit >= 0; bit--) {
      const b = (byte >> bit) & 1;
      const next = TREE[2 * node + b];
      bitsSinceSymbol++;
      allOnes &&= b === 1;
      if (next < 0) {
        const symbol = -next - 1;
        if (symbol === EOS) throw new HpackError("Huffman string holds EOS");
        scratch[out++] = symbol;
        node = 0;
        bitsSinceSymbol = 0;
        allOnes = true;
      } else {
        node = next;
      }
    }
  }
  // Padding: the most significant bits of EOS (all ones), shorter than a byte.
  if (bitsSinceSymbol > 7 || !allOnes) throw new HpackError("bad Huffman padding");
  return scratch.toString("latin1", 0, out);
}

// ---------------------------------------------------------------- decoder

/** Section 4.1: an entry's size is its name and value octets plus 32. */
const entrySize = (field: HeaderField) => field[0].length + field[1].length + 32;

/**
 * Decodes the header blocks of one connection, in order (they share the
 * dynamic table). Fields come back as shared tuples: do not modify them.
 */
export class HpackDecoder {
  /** Newest last; HPACK index 62 is the last one. */
  private readonly dynamic: HeaderField[] = [];
  private size = 0;
  private capacity: number;
  private block!: Buffer;
  private pos = 0;

  /** maxTableSize: the SETTINGS_HEADER_TABLE_SIZE this side advertised (4096 by default). */
  constructor(private readonly maxTableSize = 4096) {
    this.capacity = maxTableSize;
  }

  /** The table's size in octets, as Section 4.1 counts it. */
  get tableSize(): number {
    return this.size;
  }

  /** Its entries, newest first (index 62 first). */
  get tableEntries(): readonly HeaderField[] {
    return [...this.dynamic].reverse();
  }

  decode(block: Buffer): HeaderField[] {
    this.block = block;
    this.pos = 0;
    const fields: HeaderField[] = [];
    while (this.pos < block.length) {
      const first = block[this.pos];
      if (first & 0x80) {
        // 6.1 indexed header field
        fields.push(this.entry(this.integer(7)));
      } else if (first & 0x40) {
        // 6.2.1 literal with incremental indexing
        const field = this.literal(6);
        this.add(field);
        fields.push(field);
      } else if (first & 0x20) {
        // 6.3 dynamic table size update: only before the first field (4.2)
        if (fields.length > 0) throw new HpackError("table size update after a header field");
        const capacity = this.integer(5);
        if (capacity > this.maxTableSize) throw new HpackError(`table size ${capacity} above the limit ${this.maxTableSize}`);
        this.capacity = capacity;
        this.evict(0);
      } else {
        // 6.2.2 without indexing, 6.2.3 never indexed: the same to a decoder
        fields.push(this.literal(4));
      }
    }
    return fields;
  }

  private entry(index: number): HeaderField {
    if (index === 0) throw new HpackError("index 0");
    if (index <= STATIC_TABLE.length) return STATIC_TABLE[index - 1];
    const field = this.dynamic[this.dynamic.length - 1 - (index - STATIC_TABLE.length - 1)];
    if (field === undefined) throw new HpackError(`index ${index} beyond the tables`);
    return field;
  }

  private literal(prefixBits: number): HeaderField {
    const index = this.integer(prefixBits);
    const name = index === 0 ? this.string() : this.entry(index)[0];
    return [name, this.string()];
  }

  /** 4.4: evicts from the oldest end until the new entry fits; an entry larger than the table empties it. */
  private add(field: HeaderField): void {
    const size = entrySize(field);
    this.evict(size);
    if (size <= this.capacity) {
      this.dynamic.push(field);
      this.size += size;
    }
  }

  private evict(room: number): void {
    while (this.dynamic.length > 0 && this.size + room > this.capacity) this.size -= entrySize(this.dynamic.shift()!);
  }

  /** 5.1: an integer with an N-bit prefix. */
  private integer(prefixBits: number): number {
    const max = (1 << prefixBits) - 1;
    let value = this.block[this.pos++] & max;
    if (value < max) return value;
    for (let shift = 0; ; shift += 7) {
      if (this.pos >= this.block.length) throw new HpackError("truncated integer");
      if (shift > 28) throw new HpackError("integer too large");
      const byte = this.block[this.pos++];
      value += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) return value;
    }
  }

  /** 5.2: a string literal, Huffman-coded or raw. */
  private string(): string {
    if (this.pos >= this.block.length) throw new HpackError("truncated header block");
    const huffman = (this.block[this.pos] & 0x80) !== 0;
    const length = this.integer(7);
    const start = this.pos;
    const end = start + length;
    if (end > this.block.length) throw new HpackError("string beyond the header block");
    this.pos = end;
    return huffman ? huffmanDecode(this.block, start, end) : this.block.toString("latin1", start, end);
  }
}

// ---------------------------------------------------------------- encoder

/**
 * Encodes fields without touching any dynamic table: an exact static-table
 * match as an indexed field, anything else as a literal without indexing
 * (with the static table's name index when there is one), strings raw.
 * Names must be lower case, as HTTP/2 requires.
 */
export function encodeHeaders(fields: readonly HeaderField[]): Buffer {
  const bytes: number[] = [];
  const integer = (value: number, prefixBits: number, flags: number) => {
    const max = (1 << prefixBits) - 1;
    if (value < max) {
      bytes.push(flags | value);
      return;
    }
    bytes.push(flags | max);
    for (value -= max; value >= 0x80; value = Math.floor(value / 0x80)) bytes.push((value % 0x80) | 0x80);
    bytes.push(value);
  };
  const string = (s: string) => {
    const raw = Buffer.from(s, "latin1");
    integer(raw.length, 7, 0);
    bytes.push(...raw);
  };
  for (const [name, value] of fields) {
    const exact = STATIC_TABLE.findIndex(([n, v]) => n === name && v === value);
    if (exact >= 0) {
      integer(exact + 1, 7, 0x80);
      continue;
    }
    const named = STATIC_TABLE.findIndex(([n]) => n === name);
    integer(named + 1, 4, 0x00); // 0: a new name follows
    if (named < 0) string(name);
    string(value);
  }
  return Buffer.from(bytes);
}

/** HPACK's prefixed integer (§5.1) as bytes, the first carrying `flags`. */
function integerBytes(value: number, prefixBits: number, flags: number): number[] {
  const max = (1 << prefixBits) - 1;
  if (value < max) return [flags | value];
  const bytes = [flags | max];
  for (value -= max; value >= 0x80; value = Math.floor(value / 0x80)) bytes.push((value % 0x80) | 0x80);
  bytes.push(value);
  return bytes;
}

/**
 * encodeHeaders([[name, value]]) for one field whose name is not in the static
 * table (x-user-id, x-purchase-token), without a byte array: for the request
 * pool's per-call fields, hundreds of thousands of them.
 */
export function literalField(name: string, value: string): Buffer {
  const head = [0x00, ...integerBytes(name.length, 7, 0)];
  const valueLength = integerBytes(value.length, 7, 0);
  const out = Buffer.allocUnsafe(head.length + name.length + valueLength.length + value.length);
  let at = 0;
  for (const b of head) out[at++] = b;
  at += out.write(name, at, "latin1");
  for (const b of valueLength) out[at++] = b;
  out.write(value, at, "latin1");
  return out;
}
