// The HPACK decoder against RFC 7541 Appendix C (each example's header list,
// and the dynamic table after it), Huffman edge cases, and the encoder's
// blocks decoded back.
import { describe, expect, it } from "vitest";
import { HpackDecoder, HpackError, encodeHeaders, literalField, type HeaderField } from "./hpack.js";

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ""), "hex");

interface Step {
  block: string;
  fields: HeaderField[];
  /** Newest first, as the RFC lists it. */
  table: HeaderField[];
  size: number;
}

function decodeSeries(tableSize: number, steps: Step[]): void {
  const decoder = new HpackDecoder(tableSize);
  for (const step of steps) {
    expect(decoder.decode(hex(step.block))).toEqual(step.fields);
    expect(decoder.tableEntries).toEqual(step.table);
    expect(decoder.tableSize).toBe(step.size);
  }
}

/** A literal without indexing, new name "x", whose value is the given Huffman codes (code, bit length) padded with ones. */
function huffmanLiteral(codes: [number, number][]): Buffer {
  let bits = "";
  for (const [code, length] of codes) bits += code.toString(2).padStart(length, "0");
  bits = bits.padEnd(Math.ceil(bits.length / 8) * 8, "1");
  const value = Buffer.from(bits.match(/.{8}/g)!.map((byte) => parseInt(byte, 2)));
  if (value.length >= 127) throw new Error("keep the test strings short");
  return Buffer.concat([Buffer.from([0x00, 0x01, 0x78, 0x80 | value.length]), value]);
}

describe("RFC 7541 Appendix C", () => {
  it("C.2.1 literal with indexing", () =>
    decodeSeries(4096, [
      {
        block: "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572",
        fields: [["custom-key", "custom-header"]],
        table: [["custom-key", "custom-header"]],
        size: 55,
      },
    ]));

  it("C.2.2 literal without indexing", () => decodeSeries(4096, [{ block: "040c 2f73 616d 706c 652f 7061 7468", fields: [[":path", "/sample/path"]], table: [], size: 0 }]));

  it("C.2.3 literal never indexed", () => decodeSeries(4096, [{ block: "1008 7061 7373 776f 7264 0673 6563 7265 74", fields: [["password", "secret"]], table: [], size: 0 }]));

  it("C.2.4 indexed field", () => decodeSeries(4096, [{ block: "82", fields: [[":method", "GET"]], table: [], size: 0 }]));

  const c3Fields: HeaderField[][] = [
    [
      [":method", "GET"],
      [":scheme", "http"],
      [":path", "/"],
      [":authority", "www.example.com"],
    ],
    [
      [":method", "GET"],
      [":scheme", "http"],
      [":path", "/"],
      [":authority", "www.example.com"],
      ["cache-control", "no-cache"],
    ],
    [
      [":method", "GET"],
      [":scheme", "https"],
      [":path", "/index.html"],
      [":authority", "www.example.com"],
      ["custom-key", "custom-value"],
    ],
  ];
  const c3Tables: HeaderField[][] = [
    [[":authority", "www.example.com"]],
    [
      ["cache-control", "no-cache"],
      [":authority", "www.example.com"],
    ],
    [
      ["custom-key", "custom-value"],
      ["cache-control", "no-cache"],
      [":authority", "www.example.com"],
    ],
  ];
  const c3Sizes = [57, 110, 164];

  it("C.3 requests without Huffman", () =>
    decodeSeries(
      4096,
      ["8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d", "8286 84be 5808 6e6f 2d63 6163 6865", "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65"].map(
        (block, i) => ({ block, fields: c3Fields[i], table: c3Tables[i], size: c3Sizes[i] }),
      ),
    ));

  it("C.4 requests with Huffman", () =>
    decodeSeries(
      4096,
      ["8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff", "8286 84be 5886 a8eb 1064 9cbf", "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf"].map((block, i) => ({
        block,
        fields: c3Fields[i],
        table: c3Tables[i],
        size: c3Sizes[i],
      })),
    ));

  const date21 = "Mon, 21 Oct 2013 20:13:21 GMT";
  const date22 = "Mon, 21 Oct 2013 20:13:22 GMT";
  const cookie = "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1";
  const location = "https://www.example.com";
  const c5Fields: HeaderField[][] = [
    [
      [":status", "302"],
      ["cache-control", "private"],
      ["date", date21],
      ["location", location],
    ],
    [
      [":status", "307"],
      ["cache-control", "private"],
      ["date", date21],
      ["location", location],
    ],
    [
      [":status", "200"],
      ["cache-control", "private"],
      ["date", date22],
      ["location", location],
      ["content-encoding", "gzip"],
      ["set-cookie", cookie],
    ],
  ];
  // A 256-octet table: the second response evicts ":status 302", the third three more entries.
  const c5Tables: HeaderField[][] = [
    [
      ["location", location],
      ["date", date21],
      ["cache-control", "private"],
      [":status", "302"],
    ],
    [
      [":status", "307"],
      ["location", location],
      ["date", date21],
      ["cache-control", "private"],
    ],
    [
      ["set-cookie", cookie],
      ["content-encoding", "gzip"],
      ["date", date22],
    ],
  ];
  const c5Sizes = [222, 222, 215];

  it("C.5 responses without Huffman, with evictions", () =>
    decodeSeries(
      256,
      [
        `4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
         2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70
         6c65 2e63 6f6d`,
        "4803 3330 37c1 c0bf",
        `88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
         54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
         5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e
         3d31`,
      ].map((block, i) => ({ block, fields: c5Fields[i], table: c5Tables[i], size: c5Sizes[i] })),
    ));

  it("C.6 responses with Huffman, with evictions", () =>
    decodeSeries(
      256,
      [
        `4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
         2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3`,
        "4883 640e ffc1 c0bf",
        `88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
         77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
         9587 3160 65c0 03ed 4ee5 b106 3d50 07`,
      ].map((block, i) => ({ block, fields: c5Fields[i], table: c5Tables[i], size: c5Sizes[i] })),
    ));
});

describe("the decoder", () => {
  it("decodes Huffman codes of every length class, from the RFC's Appendix B", () => {
    // [symbol, code, bits] straight from the table.
    const samples: [number, number, number][] = [
      [48, 0x0, 5], // '0'
      [32, 0x14, 6], // ' '
      [0, 0x1ff8, 13],
      [92, 0x7fff0, 19], // '\'
      [128, 0xfffe6, 20],
      [200, 0x3ffffe2, 26],
      [255, 0x3ffffee, 26],
      [127, 0xffffffc, 28],
      [10, 0x3ffffffc, 30],
    ];
    const block = huffmanLiteral(samples.map(([, code, bits]) => [code, bits]));
    expect(new HpackDecoder().decode(block)).toEqual([["x", String.fromCharCode(...samples.map(([symbol]) => symbol))]]);
  });

  it("rejects bad Huffman strings: padding over 7 bits, padding not all ones, EOS", () => {
    const literal = (bytes: number[]) => Buffer.concat([Buffer.from([0x00, 0x01, 0x78, 0x80 | bytes.length]), Buffer.from(bytes)]);
    expect(new HpackDecoder().decode(literal([0x1f]))).toEqual([["x", "a"]]); // 'a' (00011) + 3 bits of padding
    expect(() => new HpackDecoder().decode(literal([0x1f, 0xff]))).toThrow(HpackError);
    expect(() => new HpackDecoder().decode(literal([0x00]))).toThrow(HpackError);
    expect(() => new HpackDecoder().decode(literal([0xff, 0xff, 0xff, 0xff, 0xfc]))).toThrow(HpackError);
  });

  it("applies dynamic table size updates, and refuses them above the limit or after a field", () => {
    const decoder = new HpackDecoder(4096);
    decoder.decode(hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572"));
    expect(decoder.tableSize).toBe(55);
    expect(decoder.decode(hex("20 82"))).toEqual([[":method", "GET"]]); // size 0: everything evicted
    expect(decoder.tableEntries).toEqual([]);
    expect(() => decoder.decode(hex("be"))).toThrow(HpackError); // index 62 no longer exists
    expect(decoder.decode(hex("3fe1 1f"))).toEqual([]); // back to 4096 (the limit)
    expect(() => decoder.decode(hex("3fe2 1f"))).toThrow(HpackError); // 4097
    expect(() => decoder.decode(hex("82 20"))).toThrow(HpackError);
  });

  it("drops an entry larger than the whole table, emptying it", () => {
    const decoder = new HpackDecoder(64);
    decoder.decode(hex("4001 61 01 62")); // a: b, 34 octets
    expect(decoder.tableEntries).toEqual([["a", "b"]]);
    const big = Buffer.concat([hex("4001 63 20"), Buffer.alloc(32, 0x7a)]); // c: 32 × z, 65 octets
    expect(decoder.decode(big)).toEqual([["c", "z".repeat(32)]]);
    expect(decoder.tableEntries).toEqual([]);
    expect(decoder.tableSize).toBe(0);
  });

  it("rejects index 0, indexes beyond the tables and truncated blocks", () => {
    expect(() => new HpackDecoder().decode(hex("80"))).toThrow(HpackError);
    expect(() => new HpackDecoder().decode(hex("be"))).toThrow(HpackError);
    expect(() => new HpackDecoder().decode(hex("400a 6375"))).toThrow(HpackError);
    expect(() => new HpackDecoder().decode(hex("7f"))).toThrow(HpackError);
    expect(() => new HpackDecoder().decode(hex("00"))).toThrow(HpackError);
  });
});

describe("the encoder", () => {
  const request: HeaderField[] = [
    [":method", "POST"],
    [":scheme", "http"],
    [":path", "/seckill.v1.OrderService/PlaceOrder"],
    [":authority", "127.0.0.1:50051"],
    ["content-type", "application/grpc"],
    ["te", "trailers"],
    ["grpc-timeout", "5000m"],
  ];

  it("indexes exact static matches and leaves the dynamic table alone", () => {
    expect(encodeHeaders([[":method", "POST"]])).toEqual(hex("83"));
    expect(encodeHeaders([[":path", "/a"]])).toEqual(hex("04 02 2f61"));
    expect(encodeHeaders([["te", "trailers"]])).toEqual(hex("00 02 7465 08 7472 6169 6c65 7273"));
    const decoder = new HpackDecoder();
    expect(decoder.decode(encodeHeaders(request))).toEqual(request);
    expect(decoder.tableEntries).toEqual([]);
  });

  it("blocks encoded apart concatenate, long names, values and name indexes included", () => {
    const long: HeaderField[] = [
      ["x-user-id", "u".repeat(1337)],
      ["x-".padEnd(200, "n"), "v"],
      ["www-authenticate", "w"], // static index 61: a multi-byte prefix
    ];
    const block = Buffer.concat([encodeHeaders(request), encodeHeaders(long)]);
    expect(new HpackDecoder().decode(block)).toEqual([...request, ...long]);
  });

  it("literalField is encodeHeaders of one field with a new name", () => {
    for (const [name, value] of [
      ["x-user-id", "b1-u7"],
      ["x-purchase-token", "t".repeat(126)],
      ["x-purchase-token", "t".repeat(127)],
      ["x-".padEnd(300, "n"), "v".repeat(20_000)],
    ] as const) {
      expect(literalField(name, value)).toEqual(encodeHeaders([[name, value]]));
    }
  });
});
