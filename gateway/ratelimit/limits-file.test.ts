import { describe, expect, it } from "vitest";
import { assetPath } from "../../services/common/assets.js";
import { findLimit, loadRateLimitFile, parseRateLimitConfig, RateLimitConfigError } from "./limits-file.js";

const entries = (...pairs: [string, string][]) => pairs.map(([key, value]) => ({ key, value }));

function problemsOf(text: string): string[] {
  try {
    parseRateLimitConfig(text, "limits.yaml");
  } catch (error) {
    expect(error).toBeInstanceOf(RateLimitConfigError);
    return (error as RateLimitConfigError).problems;
  }
  throw new Error("the config was accepted");
}

describe("the rate limit file", () => {
  it("ships limits per user, per remote address and per user per sale for domain seckill", () => {
    const rules = loadRateLimitFile(assetPath("gateway", "ratelimit.yaml"));
    expect(rules.domain).toBe("seckill");
    expect(findLimit(rules, entries(["user_id", "alice"]))).toMatchObject({ unit: "second", requestsPerUnit: 20 });
    expect(findLimit(rules, entries(["remote_address", "10.1.2.3"]))).toMatchObject({ unit: "second" });
    expect(findLimit(rules, entries(["sale_id", "01SALE"], ["user_id", "alice"]))).toMatchObject({ unit: "minute", requestsPerUnit: 10 });
    // The sale level alone has no limit of its own.
    expect(findLimit(rules, entries(["sale_id", "01SALE"]))).toBeUndefined();
  });

  it("matches like Envoy's rate limit service: exact value before any value, nested entries in order, the rest unlimited", () => {
    const rules = parseRateLimitConfig(`
domain: shop
descriptors:
  - key: user_id
    rate_limit: { unit: minute, requests_per_unit: 5 }
  - key: user_id
    value: ops
    rate_limit: { unit: SECOND, requests_per_unit: 1000, name: operators }
  - key: sale_id
    descriptors:
      - key: user_id
        rate_limit: { unit: hour, requests_per_unit: 7 }
      - key: user_id
        value: 42
        rate_limit: { unit: day, requests_per_unit: 0 }
`);
    expect(rules.domain).toBe("shop");
    expect(findLimit(rules, entries(["user_id", "bob"]))).toEqual({ unit: "minute", requestsPerUnit: 5, name: "" });
    expect(findLimit(rules, entries(["user_id", "ops"]))).toEqual({ unit: "second", requestsPerUnit: 1000, name: "operators" });
    expect(findLimit(rules, entries(["sale_id", "s"], ["user_id", "bob"]))).toEqual({ unit: "hour", requestsPerUnit: 7, name: "" });
    expect(findLimit(rules, entries(["sale_id", "s"], ["user_id", "42"]))).toEqual({ unit: "day", requestsPerUnit: 0, name: "" });
    expect(findLimit(rules, entries(["user_id", "bob"], ["sale_id", "s"]))).toBeUndefined();
    expect(findLimit(rules, entries(["path", "/x"]))).toBeUndefined();
    expect(findLimit(rules, entries(["sale_id", "s"], ["user_id", "bob"], ["x", "y"]))).toBeUndefined();
  });

  it("reports every problem with its line, column and field", () => {
    const problems = problemsOf(`domain: seckill
descriptors:
  - key: user_id
    rate_limit:
      unit: week
      requests_per_unit: 20
  - key: remote_address
    rate_limit:
      unit: second
      requests_per_unit: -1
  - key: sale_id
  - value: x
    rate_limit: { unit: second, requests_per_unit: 1 }
  - key: user_id
    rate_limit: { unit: minute, requests_per_unit: 3 }
  - key: tenant
    limit: 5
`);
    expect(problems).toEqual([
      'limits.yaml:5:13: descriptors[0].rate_limit.unit: expected second, minute, hour or day, got "week"',
      "limits.yaml:10:26: descriptors[1].rate_limit.requests_per_unit: expected a whole number from 0 to 4294967295",
      "limits.yaml:11:5: descriptors[2]: has neither rate_limit nor descriptors",
      "limits.yaml:12:5: descriptors[3].key: is required",
      "limits.yaml:14:5: descriptors[4]: duplicate descriptor user_id at this level",
      'limits.yaml:17:5: descriptors[5]: unknown field "limit" (expected key, value, rate_limit, descriptors)',
      "limits.yaml:16:5: descriptors[5]: has neither rate_limit nor descriptors",
    ]);
  });

  it("rejects a file without a domain, YAML it cannot parse, and a file it cannot read", () => {
    expect(problemsOf("descriptors: []\n")).toEqual(["limits.yaml:1:1: domain: is required"]);
    expect(problemsOf("domain: seckill\n")).toEqual(["limits.yaml:1:1: descriptors: is required"]);
    expect(problemsOf("- just\n- a list\n")).toEqual(["limits.yaml:1:1: (top level): expected a map with domain and descriptors"]);
    expect(problemsOf("domain: seckill\ndescriptors:\n  - key: a\n    rate_limit: {unit: second, requests_per_unit: 1\n")[0]).toMatch(/^limits\.yaml:\d+:\d+: /);
    expect(problemsOf("domain: a\ndomain: b\ndescriptors: []\n")[0]).toMatch(/^limits\.yaml:2:1: .*unique/i);
    expect(() => loadRateLimitFile("/nonexistent/ratelimit.yaml")).toThrow(/invalid rate limit config \/nonexistent\/ratelimit\.yaml:\n  cannot read the file: ENOENT/);
  });
});
