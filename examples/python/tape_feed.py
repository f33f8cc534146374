"""A market maker in Python on Tape's Kafka door: it produces signed JSON commands to
the commands topic and reads their results from its account's own JSON feed
(`tape fanout` writes tape.account.<id>), deduplicating by seq.

    python3 tape_feed.py --brokers HOST:PORT --token tape_<id>_<secret> --account N \\
        [--commands-topic tape.commands] [--feed-prefix tape] [--market BTC-USDT]
        trade PRICE QUANTITY   places a limit sell, prints its outcome, waits for a fill
        measure N              N orders placed and cancelled one at a time; prints the
                               submit-to-outcome latency's p50 and p99

Each line printed is a JSON object. Uses confluent-kafka and blake3.
"""
import argparse
import json
import sys
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition

from tape_sign import Signer


class Feed:
    """An account's feed, read from its start; each seq once."""

    def __init__(self, brokers, topic):
        self.consumer = Consumer({
            "bootstrap.servers": brokers,
            "group.id": "tape-feed-example",
            "enable.auto.commit": False,
            "broker.address.family": "v4",
            # Some brokers (tansu) hold a fetch for its whole wait even once records
            # arrive: a short wait keeps the latency low.
            "fetch.wait.max.ms": 5,
            "socket.nagle.disable": True,
        })
        deadline = time.time() + 60
        while topic not in self.consumer.list_topics(timeout=5).topics:
            if time.time() > deadline:
                raise SystemExit("no feed topic %s: is tape fanout running?" % topic)
            time.sleep(0.2)
        self.consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        self.last_seq = 0
        self.seen = []

    def next(self, timeout=30):
        """The next record not seen before, or None after `timeout` seconds."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            msg = self.consumer.poll(0.2)
            if msg is None:
                continue
            if msg.error():
                raise KafkaException(msg.error())
            record = json.loads(msg.value())
            if record["seq"] <= self.last_seq:
                continue  # a copy: the fan-out delivers at least once
            self.last_seq = record["seq"]
            self.seen.append(record)
            return record
        return None

    def until(self, want, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            record = self.next(deadline - time.time())
            if record is not None and want(record):
                return record
        raise SystemExit("timed out waiting on the feed; seen %d records" % len(self.seen))


def outcome_of(command_id):
    return lambda r: "outcome" in r["update"] and r["update"]["outcome"]["command"] == command_id


class Trader:
    def __init__(self, args):
        self.args = args
        self.signer = Signer(args.token)
        self.producer = Producer({
            "bootstrap.servers": args.brokers,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 0,
            "broker.address.family": "v4",
            "socket.nagle.disable": True,
        })
        self.feed = Feed(args.brokers, "%s.account.%d" % (args.feed_prefix, args.account))

    def send(self, command):
        """Produces a signed command; returns its id."""
        text = self.signer.sign(command)
        self.producer.produce(self.args.commands_topic, text.encode(),
                              key=str(self.args.account).encode(), partition=0)
        self.producer.flush(30)
        return json.loads(text)["id"]

    def place(self, price, quantity):
        return self.send({"place_order": {
            "account": self.args.account, "market": self.args.market, "side": "sell",
            "order_type": {"limit": {"price": price, "quantity": quantity}},
        }})

    def cancel(self, order):
        return self.send({"cancel_order": {
            "account": self.args.account, "order": {"id": order}}})


def trade(t, price, quantity):
    command = t.place(price, quantity)
    outcome = t.feed.until(outcome_of(command))
    print(json.dumps({"outcome": outcome}), flush=True)
    result = outcome["update"]["outcome"]["result"]
    if "accepted" not in result:
        raise SystemExit("the order was refused: %s" % result)
    order = result["accepted"]["id"]
    fill = t.feed.until(lambda r: "fill" in r["update"]
                        and (r["update"]["fill"]["maker"] or {}).get("order") == order, timeout=60)
    print(json.dumps({"fill": fill}), flush=True)
    # Whatever followed the fill (balances, the order done) within a moment.
    while t.feed.next(timeout=1) is not None:
        pass
    print(json.dumps({"feed": t.feed.seen}), flush=True)


def measure(t, n, price):
    latencies = []
    for _ in range(n):
        start = time.perf_counter()
        command = t.place(price, "0.001")
        outcome = t.feed.until(outcome_of(command))
        latencies.append((time.perf_counter() - start) * 1000)
        result = outcome["update"]["outcome"]["result"]
        if "accepted" in result:
            t.feed.until(outcome_of(t.cancel(result["accepted"]["id"])))
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]
    print(json.dumps({"orders": n, "p50_ms": round(pick(0.50), 2), "p99_ms": round(pick(0.99), 2)}),
          flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--brokers", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--account", type=int, required=True)
    p.add_argument("--commands-topic", default="tape.commands")
    p.add_argument("--feed-prefix", default="tape")
    p.add_argument("--market", default="BTC-USDT")
    p.add_argument("what", choices=["trade", "measure"])
    p.add_argument("rest", nargs="*")
    args = p.parse_args()
    t = Trader(args)
    if args.what == "trade":
        trade(t, *args.rest)
    else:
        measure(t, int(args.rest[0]), args.rest[1] if len(args.rest) > 1 else "90000")


if __name__ == "__main__":
    sys.exit(main())
