// The fault stack lives with the fault campaign (tools/chaos), which shares it with the fault tests.
export * from "../../tools/chaos/fault-stack.js";
