import { expect, it } from "vitest";
import { flashOverrides } from "./groups.js";

it("passes FLASH_GROUP_<VAR> on as <VAR> and nothing else", () => {
  expect(flashOverrides({ FLASH_GROUP_MAX_IN_FLIGHT: "1024", FLASH_GROUP_: "x", MAX_IN_FLIGHT: "8", FLASH_ORDER_ADDR: "127.0.0.1:1" })).toEqual({
    MAX_IN_FLIGHT: "1024",
  });
});
