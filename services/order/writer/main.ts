// Order writer: persists reservation events from JetStream as orders in Postgres.
import { runService } from "../../common/runner.js";
import { startWriter } from "./app.js";

await runService("order-writer", startWriter);
