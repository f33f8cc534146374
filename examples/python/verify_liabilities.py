#!/usr/bin/env python3
"""Check that your balance is in a Tape exchange's published liabilities.

Standard library only. It recomputes the path from your leaf to the published
root (SHA-256, algorithm 1, as docs/auditors.md describes it) and checks that
the sums along the way add up to the published totals.

    # from the exchange's GraphQL API, with your own API token:
    python3 verify_liabilities.py --url http://127.0.0.1:8080/graphql --token tape_...
    # or from files (`tape pol export` writes the record and every proof):
    python3 verify_liabilities.py --proof proof.json --record round-2.json

Exit status 0: verified. 1: the proof does not check out (the reason is printed).
"""

import argparse
import hashlib
import json
import sys
import urllib.request

ALGORITHM = 1
U128_MAX = (1 << 128) - 1
U64_MAX = (1 << 64) - 1


class NotVerified(Exception):
    pass


def unsigned(text, bound, what):
    """A sum or id as the API gives it: only digits, at most `bound`."""
    if isinstance(text, int) and not isinstance(text, bool):
        text = str(text)
    if not isinstance(text, str) or not text.isdigit() or not text.isascii():
        raise NotVerified(f"{what} {text!r} is not an unsigned integer")
    value = int(text)
    if value > bound:
        raise NotVerified(f"{what} {text} is too large")
    return value


def digest(text, what):
    try:
        raw = bytes.fromhex(text)
    except (TypeError, ValueError):
        raise NotVerified(f"{what} is not hex")
    if len(raw) != 32:
        raise NotVerified(f"{what} is {len(raw)} bytes, not 32")
    return raw


def sums_bytes(sums):
    return b"".join(s.to_bytes(16, "big") for s in sums)


def verify(proof, record):
    """Raises NotVerified with the reason, or returns the leaf's balances."""
    if record.get("algorithm") != ALGORITHM:
        raise NotVerified(f"algorithm {record.get('algorithm')} is not {ALGORITHM}")
    if int(proof["round"]) != int(record["round"]):
        raise NotVerified("the proof and the record are of different rounds")
    height = int(record["height"])
    path = proof["path"]
    if not 1 <= height <= 32 or len(path) != height:
        raise NotVerified(f"the path has {len(path)} levels; the tree has {height}")
    totals = [unsigned(t, U128_MAX, "a total") for t in record["totals"]]
    balances = [unsigned(b, U128_MAX, "a balance") for b in proof["balances"]]
    if len(balances) != len(totals):
        raise NotVerified("the leaf does not carry one sum per asset")
    index = unsigned(proof["index"], (1 << height) - 1, "the leaf index")
    account = unsigned(proof["account"], U64_MAX, "the account")
    salt = digest(proof["salt"], "the salt")

    leaf_id = hashlib.sha256(b"tape-pol/1/id" + salt + account.to_bytes(8, "big")).digest()
    node = hashlib.sha256(b"\x00" + leaf_id + sums_bytes(balances)).digest()
    sums = balances
    for level, sibling in enumerate(path):
        other = digest(sibling["hash"], f"the sibling hash at level {level}")
        other_sums = [unsigned(s, U128_MAX, f"a sibling sum at level {level}") for s in sibling["sums"]]
        if len(other_sums) != len(totals):
            raise NotVerified(f"the sibling at level {level} does not carry one sum per asset")
        if (index >> level) & 1 == 0:
            pair = node + sums_bytes(sums) + other + sums_bytes(other_sums)
        else:
            pair = other + sums_bytes(other_sums) + node + sums_bytes(sums)
        node = hashlib.sha256(b"\x01" + pair).digest()
        sums = [a + b for a, b in zip(sums, other_sums)]
        if any(s > U128_MAX for s in sums):
            raise NotVerified(f"a sum overflows 128 bits at level {level}")
    if node != digest(record["root"], "the root"):
        raise NotVerified("the path does not lead to the published root")
    if sums != totals:
        raise NotVerified("the path's sums at the root are not the published totals")
    return balances


def graphql(url, token, query, variables):
    body = json.dumps({"query": query, "variables": variables}).encode()
    req = urllib.request.Request(url, body, {
        "content-type": "application/json",
        "authorization": f"Bearer {token}",
    })
    with urllib.request.urlopen(req, timeout=30) as r:
        answer = json.load(r)
    if answer.get("errors"):
        raise SystemExit(f"the API refused: {answer['errors'][0]['message']}")
    return answer["data"]


def fetch(url, token, round_no):
    rounds = graphql(url, token, """{ liabilityRounds { round checkpoint height algorithm root
        totals { asset scale users } } }""", {})["liabilityRounds"]
    if not rounds:
        raise SystemExit("the exchange has published no liabilities round yet")
    published = rounds[0] if round_no is None else next(
        (r for r in rounds if r["round"] == round_no), None)
    if published is None:
        raise SystemExit(f"no round {round_no} is published")
    proof = graphql(url, token, """query($round: Int) { myLiabilityProof(round: $round) {
        round account salt index balances assets path { hash sums } } }""",
                    {"round": published["round"]})["myLiabilityProof"]
    record = {
        "round": published["round"],
        "height": published["height"],
        "algorithm": published["algorithm"],
        "root": published["root"],
        "totals": [t["users"] for t in published["totals"]],
        "assets": [t["asset"] for t in published["totals"]],
        "scales": [t["scale"] for t in published["totals"]],
    }
    return proof, record


def amount(minor, scale):
    if not scale:
        return str(minor)
    whole, frac = divmod(minor, 10 ** scale)
    return f"{whole}.{frac:0{scale}d}"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", help="the exchange's GraphQL endpoint")
    p.add_argument("--token", help="your API token")
    p.add_argument("--round", type=int, help="a round (default: the newest)")
    p.add_argument("--proof", help="a proof as JSON (instead of --url)")
    p.add_argument("--record", help="the round's record as JSON (with --proof)")
    args = p.parse_args()
    if args.proof and args.record:
        with open(args.proof) as f:
            proof = json.load(f)
        with open(args.record) as f:
            record = json.load(f)
    elif args.url and args.token:
        proof, record = fetch(args.url, args.token, args.round)
    else:
        p.error("give --url and --token, or --proof and --record")
    try:
        balances = verify(proof, record)
    except (NotVerified, KeyError, TypeError, ValueError) as e:
        print(f"NOT VERIFIED: {e}")
        return 1
    assets = record.get("assets") or [f"asset {i}" for i in range(len(balances))]
    scales = record.get("scales") or [0] * len(balances)
    held = ", ".join(f"{amount(b, s)} {a}" for b, a, s in zip(balances, assets, scales))
    print(f"verified: account {proof['account']} is in round {record['round']} "
          f"(root {record['root'][:16]}…) with {held}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
