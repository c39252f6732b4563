// Inventory service: sales (SaleService) and stock reservation (InventoryService).
import { runService } from "../common/runner.js";
import { startInventory } from "./app.js";

await runService("inventory", startInventory);
