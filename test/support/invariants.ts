// The invariant checker lives with the fault campaign (tools/chaos), which shares it with the fault tests.
export * from "../../tools/chaos/invariants.js";
