"""Signs Tape commands as JSON records, as a market maker's program does.

A record's MAC is blake3 in keyed mode over the record's own text, written with
"mac" set to 64 zeros; the hex digest then replaces the zeros. Each signing process
picks a random stream and numbers its commands 1, 2, 3, ... within it: the engine
accepts each (key, stream, seq) once, so a copy of a record never runs twice.

    python3 tape_sign.py --check schemas/tests/golden/signed-command.golden
re-signs the golden test vector and exits 0 when every byte matches.
"""
import json
import random
import sys
import time
import uuid

import blake3

MAC_KEY_CONTEXT = "tape 2026-11-21 command MAC key"
ZEROS = "0" * 64


class Signer:
    """One per process (or per thread that sends in order): a key and a stream."""

    def __init__(self, token, stream=None):
        _, key, secret = token.split("_", 2)
        self.key = int(key)
        self.mac_key = blake3.blake3(
            secret.encode(), derive_key_context=MAC_KEY_CONTEXT
        ).digest()
        # Below 2**53 so that JavaScript readers see the same number.
        self.stream = random.getrandbits(53) if stream is None else stream
        self.seq = 0

    def sign(self, command, now_ms=None, validity_ms=30_000, command_id=None):
        """The signed JSON text of `command` (a dict), valid for `validity_ms`."""
        now = int(time.time() * 1000) if now_ms is None else now_ms
        self.seq += 1
        record = {
            "version": 3,
            "id": command_id or str(uuid.uuid4()),
            "time_ms": now,
            "command": command,
            "auth": {
                "key": self.key,
                "stream": self.stream,
                "seq": self.seq,
                "expires_ms": now + validity_ms,
                "mac": ZEROS,
            },
        }
        text = json.dumps(record, separators=(",", ":"))
        mac = blake3.blake3(text.encode(), key=self.mac_key).hexdigest()
        return text.replace('"mac":"' + ZEROS + '"', '"mac":"' + mac + '"', 1)


def check(golden_path):
    """Re-signs the golden vector's JSON record; True when it is byte-identical."""
    fields = {}
    for line in open(golden_path, encoding="utf-8"):
        name, _, value = line.partition("  ")
        if value:
            fields.setdefault(name.strip(), []).append(value.strip())
    expected = fields["record"][-1]  # the JSON record comes after the bincode one
    want = json.loads(expected)
    signer = Signer("tape_%d_%s" % (want["auth"]["key"], fields["secret"][0]),
                    stream=want["auth"]["stream"])
    signer.seq = want["auth"]["seq"] - 1
    got = signer.sign(
        want["command"],
        now_ms=want["time_ms"],
        validity_ms=want["auth"]["expires_ms"] - want["time_ms"],
        command_id=want["id"],
    )
    if got != expected:
        print("python signs\n  %s\nthe golden vector says\n  %s" % (got, expected))
        return False
    return True


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        sys.exit(0 if check(sys.argv[2]) else 1)
    print(__doc__)
