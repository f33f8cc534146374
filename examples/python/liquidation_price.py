"""Computes each open position's liquidation price from Tape's GraphQL figures,
with only the standard library, and compares it with the one Tape shows.

    python3 liquidation_price.py --url http://localhost:8080/graphql --account 1

Cross margin (docs/margin.md, "The liquidation price"): an account is liquidated
when its equity in a collateral falls below the maintenance margin of its
positions settled in it. Moving only one position's mark to p, with its size n,
its bracket's rate r and amount cum, the other positions' maintenance M_o and the
account's equity E at the marks now:

    long:  E + n (p - mark) = n p r - cum + M_o
           p = (n mark + M_o - cum - E) / (n (1 - r))
    short: E - n (p - mark) = n p r - cum + M_o
           p = (E + n mark + cum - M_o) / (n (1 + r))

rounded to the tick toward the position (up for a long, down for a short).
Prints one line per position and exits 1 if any differs from Tape's.
"""
import argparse
import json
import sys
import time
import urllib.request
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal


def graphql(url, query, token=None):
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    body = json.dumps({"query": query}).encode()
    with urllib.request.urlopen(urllib.request.Request(url, body, headers)) as r:
        answer = json.load(r)
    if answer.get("errors"):
        raise SystemExit(f"GraphQL: {answer['errors']}")
    return answer["data"]


def bracket(perp, value):
    """The bracket a position worth `value` falls in (the last one above all)."""
    for b in perp["brackets"]:
        if value <= Decimal(b["notionalCap"]):
            return b
    return perp["brackets"][-1]


def liquidation_price(size, mark, perp, margin, maintenance):
    n = abs(size)
    b = bracket(perp, n * mark)
    rate = Decimal(b["maintenancePpm"]) / Decimal(1_000_000)
    cum = Decimal(b["maintenanceAmount"])
    others = Decimal(margin["maintenance"]) - maintenance
    equity = Decimal(margin["equity"])
    if size > 0:
        price = (n * mark + others - cum - equity) / (n * (1 - rate))
        rounding = ROUND_CEILING
    else:
        price = (equity + n * mark + cum - others) / (n * (1 + rate))
        rounding = ROUND_FLOOR
    tick = Decimal(perp["tickSize"])
    price = (price / tick).to_integral_value(rounding) * tick
    return price if price > 0 else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="http://localhost:8080/graphql")
    ap.add_argument("--account", type=int, required=True)
    ap.add_argument("--token", help="a trader, auditor or admin key's token")
    args = ap.parse_args()
    q = (
        "{ positions(account: %d) { market size mark maintenanceMargin liquidationPrice } "
        "perpetuals { symbol collateral tickSize brackets { notionalCap maintenancePpm maintenanceAmount } } }"
        % args.account
    )
    # The read side follows the events log: a position just opened may take a
    # moment to appear.
    for _ in range(50):
        data = graphql(args.url, q, args.token)
        if any(Decimal(p["size"]) != 0 for p in data["positions"]):
            break
        time.sleep(0.1)
    else:
        raise SystemExit(f"account {args.account} has no open position")
    perps = {p["symbol"]: p for p in data["perpetuals"]}
    margins = {}
    differ = 0
    for pos in data["positions"]:
        size = Decimal(pos["size"])
        if size == 0:
            continue
        perp = perps[pos["market"]]
        collateral = perp["collateral"]
        if collateral not in margins:
            q = '{ margin(account: %d, collateral: "%s") { equity maintenance } }' % (
                args.account,
                collateral,
            )
            margins[collateral] = graphql(args.url, q, args.token)["margin"]
        mine = liquidation_price(
            size,
            Decimal(pos["mark"]),
            perp,
            margins[collateral],
            Decimal(pos["maintenanceMargin"]),
        )
        tapes = pos["liquidationPrice"]
        tapes = Decimal(tapes) if tapes is not None else None
        same = mine == tapes
        differ += not same
        print(f"{pos['market']} size {size}: liquidation price {mine} (Tape: {tapes}) "
              + ("same" if same else "DIFFERENT"))
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
