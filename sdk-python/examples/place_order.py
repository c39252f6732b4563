"""A Python BFF buying one unit for a logged-in user: a purchase token, then PlaceOrder.

    python place_order.py <sale-id> <user-id> [--direct]

Through the edge (Envoy) at EDGE_ADDR, 127.0.0.1:8080 under `npm start`; with
--direct, to the gateway at GATEWAY_ADDR and the order service at ORDER_ADDR,
past every check of the edge. Prints the outcome as JSON.
"""

import json
import logging
import os
import sys
import time

import grpc
from seckill.v1 import access_pb2, access_pb2_grpc, order_pb2, order_pb2_grpc
from seckill_sdk import purchase_metadata, rejection_of, user_metadata

# No answer came: the order may or may not have been placed, so ask again with the same request id.
ANSWER_LOST = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


def buy(access, orders, sale_id, user_id, request_id):
    try:
        token = access.IssuePurchaseToken(access_pb2.IssuePurchaseTokenRequest(sale_id=sale_id), metadata=user_metadata(user_id), timeout=2).token
        for retry in (False, True):
            request = order_pb2.PlaceOrderRequest(sale_id=sale_id, quantity=1, request_id=request_id, retry=retry)
            try:
                order = orders.PlaceOrder(request, metadata=purchase_metadata(user_id, sale_id, token), timeout=2).order
                return {"won": True, "order_id": order.order_id, "status": order_pb2.OrderStatus.Name(order.status)}
            except grpc.RpcError as error:
                if retry or error.code() not in ANSWER_LOST:
                    raise
                logging.warning("PlaceOrder %s: %s; asking again with retry=True", request_id, error.code().name)
                time.sleep(rejection_of(error).retry_delay or 0.1)
    except grpc.RpcError as error:
        refusal = rejection_of(error)
        if refusal.code in ANSWER_LOST:
            raise  # still no answer: the buyer may try again, with the same request id
        # SOLD_OUT, SALE_ENDED, ALREADY_PURCHASED, ...; the edge's own refusals carry only a code:
        # RESOURCE_EXHAUSTED (over a limit), UNAUTHENTICATED (no valid purchase token).
        return {"won": False, "reason": refusal.reason or refusal.code.name}


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4) or sys.argv[3:] not in ([], ["--direct"]):
        sys.exit("usage: place_order.py <sale-id> <user-id> [--direct]")
    sale_id, user_id = sys.argv[1], sys.argv[2]
    edge = os.environ.get("EDGE_ADDR", "127.0.0.1:8080")
    direct = sys.argv[3:] == ["--direct"]
    gateway, order = (os.environ.get("GATEWAY_ADDR", "127.0.0.1:50054"), os.environ.get("ORDER_ADDR", "127.0.0.1:50052")) if direct else (edge, edge)
    with grpc.insecure_channel(gateway) as to_gateway, grpc.insecure_channel(order) as to_order:
        try:
            outcome = buy(access_pb2_grpc.AccessServiceStub(to_gateway), order_pb2_grpc.OrderServiceStub(to_order), sale_id, user_id, f"req-{time.time_ns()}")
        except grpc.RpcError as error:
            sys.exit(f"no answer: {error.code().name}: {error.details()}")
    print(json.dumps(outcome))
