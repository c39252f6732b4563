// gRPC handlers of the inventory service: decode, call the domain, encode.
import { InventoryServiceService, SaleServiceService, type InventoryServiceServer, type SaleServiceServer } from "@seckill/sdk";
import { unary, type ServiceRegistration } from "../common/grpc-server.js";
import type { Logger } from "../common/log.js";
import type { Reconcile } from "./reconcile.js";
import type { ReservationService } from "./reservations.js";
import type { SaleService } from "./sales.js";

export function saleServiceRegistration(sales: SaleService, reconcile: Reconcile, log: Logger): ServiceRegistration {
  const implementation: SaleServiceServer = {
    createSale: unary(log, "CreateSale", async (req) => ({ sale: await sales.create(req) })),
    getSale: unary(log, "GetSale", async (req) => ({ sale: await sales.get(req.saleId) })),
    listSales: unary(log, "ListSales", (req) => sales.list(req.pageSize, req.pageToken)),
    getSaleStatus: unary(log, "GetSaleStatus", (req) => sales.status(req.saleId)),
    openSale: unary(log, "OpenSale", async (req) => ({ sale: await sales.open(req.saleId) })),
    closeSale: unary(log, "CloseSale", async (req) => ({ sale: await sales.close(req.saleId) })),
    warmSale: unary(log, "WarmSale", (req) => sales.warm(req.saleId)),
    reconcileSale: unary(log, "ReconcileSale", (req) => reconcile(req.saleId, req.repair)),
  };
  return { name: "seckill.v1.SaleService", definition: SaleServiceService, implementation };
}

export function inventoryServiceRegistration(reservations: ReservationService, log: Logger): ServiceRegistration {
  const implementation: InventoryServiceServer = {
    reserve: unary(log, "Reserve", async (req) => ({ results: await reservations.reserve(req.items) })),
    release: unary(log, "Release", (req) => reservations.release(req.reservationId, req.cause)),
    getStock: unary(log, "GetStock", (req) => reservations.stock(req.saleId)),
    getReservation: unary(log, "GetReservation", (req) => reservations.reservation(req.reservationId)),
  };
  return { name: "seckill.v1.InventoryService", definition: InventoryServiceService, implementation };
}
