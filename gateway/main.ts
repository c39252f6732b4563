// Gateway: the edge's helper process (RateLimitService for Envoy's global rate limit filter).
import { runService } from "../services/common/runner.js";
import { startGateway } from "./app.js";

await runService("gateway", startGateway);
