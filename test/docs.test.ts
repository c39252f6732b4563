// The documentation must match the code: the SDK's README shows the example
// file the tests run, the operations guide has a row for every configuration
// variable the services read, and no relative link of a Markdown file is broken.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { credentials } from "@grpc/grpc-js";
import { AccessServiceClient, OrderServiceClient, OrderStatus, callUnary } from "@seckill/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buy, type Clients } from "../sdk/examples/place-order.js";
import { saleRequest, startTestStack, type TestStack } from "./support/stack.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const read = (path: string) => readFileSync(join(ROOT, path), "utf8");

describe("the documentation", () => {
  it("shows the SDK example in sdk/README.md exactly as it is in sdk/examples/place-order.ts", () => {
    expect(read("sdk/README.md")).toContain(read("sdk/examples/place-order.ts").trim());
  });

  it("shows the Python purchase in sdk-python/README.md exactly as buy() is in sdk-python/examples/place_order.py", () => {
    const example = read("sdk-python/examples/place_order.py");
    const buyFunction = example.slice(example.indexOf("def buy("), example.indexOf("\n\n\nif __name__"));
    expect(buyFunction).toMatch(/^def buy\(/);
    expect(read("sdk-python/README.md")).toContain(buyFunction);
  });

  it("documents every configuration variable with its default in docs/operations.md", () => {
    const source = read("services/common/config.ts");
    const variables = [...source.matchAll(/(?:str|int)\("([A-Z_]+)"/g)].map((m) => m[1]);
    expect(variables.length).toBeGreaterThan(15);
    const operations = read("docs/operations.md");
    const missing = variables.filter((name) => !new RegExp(`^\\| \`${name}\` \\| \``, "m").test(operations));
    expect(missing).toEqual([]);
  });

  it("links, in every Markdown file of the repository, only to files and headings that exist", () => {
    // Tracked and new files alike, without what .gitignore leaves out (node_modules, .local, dist).
    const files = execFileSync("git", ["ls-files", "--cached", "--others", "--exclude-standard", "--", "*.md"], { cwd: ROOT, encoding: "utf8" })
      .split("\n")
      .filter((file) => file !== "" && existsSync(join(ROOT, file)));
    expect(files).toContain("README.md");
    const broken: string[] = [];
    for (const file of files) {
      for (const target of relativeLinks(read(file))) {
        const [path, anchor] = splitAnchor(target);
        const resolved = path === "" ? join(ROOT, file) : join(ROOT, dirname(file), decodeURI(path));
        if (!existsSync(resolved)) broken.push(`${file}: ${target} (no such file)`);
        else if (anchor && resolved.endsWith(".md") && !statSync(resolved).isDirectory() && !headingAnchors(readFileSync(resolved, "utf8")).has(anchor)) {
          broken.push(`${file}: ${target} (no heading #${anchor} in ${relative(ROOT, resolved)})`);
        }
      }
    }
    expect(broken).toEqual([]);
  });

  it("finds a broken link and a missing heading", () => {
    const text =
      "[a](missing.md) `[b](in-code.md)` [c](#nowhere) [d](https://example.com/x.md)\n```\n[e](in-a-block.md)\n```\n1. list\n   ```\n   [f](indented-block.md)\n   ```\n## Somewhere: `here` (too)\n";
    expect(relativeLinks(text)).toEqual(["missing.md", "#nowhere"]);
    expect(headingAnchors(text)).toEqual(new Set(["somewhere-here-too"]));
  });
});

/** Markdown without its fenced code blocks (indented ones, in list items, too). */
function withoutCodeBlocks(markdown: string): string {
  return markdown.replace(/^[ \t]*(```|~~~)[^\n]*\n[\s\S]*?^[ \t]*\1[^\n]*$/gm, "");
}

/** Markdown without its fenced code blocks and inline code spans, where brackets are not links. */
function prose(markdown: string): string {
  return withoutCodeBlocks(markdown).replace(/`[^`\n]*`/g, "");
}

/** The targets of the inline links and images that are not a URL with a scheme. */
function relativeLinks(markdown: string): string[] {
  const targets = [...prose(markdown).matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((m) => m[1]);
  return targets.filter((target) => !/^[a-z][a-z0-9+.-]*:/i.test(target));
}

function splitAnchor(target: string): [string, string | undefined] {
  const at = target.indexOf("#");
  return at < 0 ? [target, undefined] : [target.slice(0, at), target.slice(at + 1)];
}

/** The anchors GitHub gives a file's headings: lower case, punctuation dropped, spaces as hyphens, repeats numbered. */
function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  for (const [, heading] of withoutCodeBlocks(markdown).matchAll(/^#{1,6}[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$/gm)) {
    const base = heading
      .toLowerCase()
      .replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, "")
      .replace(/ /g, "-");
    let anchor = base;
    for (let n = 1; anchors.has(anchor); n++) anchor = `${base}-${n}`;
    anchors.add(anchor);
  }
  return anchors;
}

describe("the SDK example", () => {
  let stack: TestStack;
  let clients: Clients;
  beforeAll(async () => {
    // Tokens required, as under npm start: the example must get one from the gateway.
    stack = await startTestStack({ PURCHASE_TOKEN_REQUIRED: "true" }, { gateway: true });
    clients = {
      access: new AccessServiceClient(stack.gateway!.address, credentials.createInsecure()),
      orders: new OrderServiceClient(stack.order.address, credentials.createInsecure()),
    };
  });
  afterAll(async () => {
    clients?.access.close();
    clients?.orders.close();
    await stack?.stop();
  });

  it("wins the one unit and watches the order until it is stored, then reports SOLD_OUT to the next buyer", async () => {
    const sale = await stack.createSale({ totalStock: 1 });
    const first = await buy(clients, sale.saleId, "alice", "req-1");
    expect(first).toMatchObject({ won: true, status: OrderStatus.ORDER_STATUS_CREATED });
    expect(first.orderId?.startsWith(sale.saleId)).toBe(true);
    const second = await buy(clients, sale.saleId, "bob", "req-2");
    expect(second).toEqual({ won: false, reason: "SOLD_OUT" });
  });

  it("answers the challenge of a sale that requires one, with what the buyer typed", async () => {
    const request = saleRequest({ totalStock: 2, accessRules: { challengeRequired: true, allowedUsers: [], blockedUsers: [], minAccountAge: undefined } });
    const { sale } = await callUnary(stack.sales, "createSale", request);
    const saleId = sale!.saleId;
    // The buyer reads the image; here the answer comes from where the gateway keeps it.
    const typed = async (challenge: { challengeId: string; imageType: string }, wrong = false) => {
      expect(challenge.imageType).toBe("image/svg+xml");
      const { answer } = JSON.parse((await stack.redis.get(`${stack.config.namespace}:challenge:${challenge.challengeId}`))!) as { answer: string };
      return wrong ? String(Number(answer) + 1) : answer;
    };
    expect(await buy(clients, saleId, "carol", "req-3")).toEqual({ won: false, reason: "CHALLENGE_REQUIRED" });
    expect(await buy(clients, saleId, "carol", "req-4", (c) => typed(c, true))).toEqual({ won: false, reason: "CHALLENGE_FAILED" });
    expect(await buy(clients, saleId, "carol", "req-5", (c) => typed(c))).toMatchObject({ won: true });
  });
});
