// Order service: PlaceOrder and the order lifecycle, for BFFs.
import { runService } from "../common/runner.js";
import { startOrder } from "./app.js";

await runService("order", startOrder);
