#!/usr/bin/env python3
"""An independent verifier of Trellis review packets (trellis-evidence/1).

Written from docs/packet-evidence.md alone, in another language than
Trellis, so that the format is checked by a second reading: a packet this
script accepts is one anyone can check without Trellis or its database.

    verify_packet.py PACKET.json PUBLIC_KEY [PUBLIC_KEY ...]

PUBLIC_KEY is a signed-note verifier key: name+hexid+base64(0x01 || key).
Exit codes: 0 verified, 1 not verified (the reason on standard output),
2 could not be read. Needs the `cryptography` package (Ed25519).
"""

import base64
import hashlib
import json
import math
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


class NotVerified(Exception):
    pass


class Unreadable(Exception):
    pass


# ---- canonical JSON: what Trellis hashes a packet as --------------------

def _float(x):
    """A float as serde_json prints it (the zmij crate): its shortest
    round-trip digits; plain when the first digit's power of ten e is in
    -5..=15 ("100.0", "12.5", "0.00001"), else scientific with a signed
    exponent ("1e+16", "1.5e-7")."""
    if x == 0:
        return "0.0"  # -0.0 folds into 0.0, as the log stores it
    if not math.isfinite(x):
        raise Unreadable("a packet number is not finite")
    sign = "-" if x < 0 else ""
    mantissa, _, exp = repr(abs(x)).partition("e")
    int_part, _, frac_part = mantissa.partition(".")
    if int_part.strip("0"):
        point = len(int_part.lstrip("0"))
    else:
        point = -(len(frac_part) - len(frac_part.lstrip("0")))
    point += int(exp) if exp else 0
    digits = (int_part + frac_part).lstrip("0").rstrip("0") or "0"
    n, e = len(digits), point - 1
    if -5 <= e <= 15:
        if n - 1 <= e:
            return sign + digits + "0" * (e + 1 - n) + ".0"
        if e >= 0:
            return sign + digits[: e + 1] + "." + digits[e + 1 :]
        return sign + "0." + "0" * (-e - 1) + digits
    head = digits[0] + ("." + digits[1:] if n > 1 else "")
    return sign + head + "e" + ("+" if e >= 0 else "-") + str(abs(e))


def canonical(value):
    """Object keys sorted by their UTF-8 bytes (the same as by code point),
    no insignificant whitespace, strings escaped as serde_json escapes them."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ",".join(canonical(v) for v in value) + "]"
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda kv: kv[0].encode("utf-8"))
        return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + canonical(v) for k, v in items) + "}"
    raise Unreadable("a packet value of an unknown kind")


# ---- signed notes and keys ------------------------------------------------

def parse_key(text):
    name, _, rest = text.strip().partition("+")
    hexid, _, key = rest.partition("+")
    try:
        raw = base64.b64decode(key, validate=True)
        key_id = int(hexid, 16)
    except Exception as e:
        raise Unreadable(f"not a public key: {text!r}") from e
    if len(raw) != 33 or raw[0] != 1:
        raise Unreadable(f"not an Ed25519 public key: {text!r}")
    expected = hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4]
    if int.from_bytes(expected, "big") != key_id:
        raise Unreadable(f"the key id does not match the key: {text!r}")
    return name, key_id, Ed25519PublicKey.from_public_bytes(raw[1:])


def check_checkpoint(note, keys):
    body, sep, signatures = note.partition("\n\n")
    if not sep:
        raise NotVerified("the checkpoint has no signature")
    body += "\n"
    lines = body.split("\n")
    try:
        origin, size, root = lines[0], int(lines[1]), base64.b64decode(lines[2], validate=True)
    except Exception as e:
        raise NotVerified("the checkpoint's body is malformed") from e
    if len(root) != 32:
        raise NotVerified("the checkpoint's root is not 32 bytes")
    for line in signatures.splitlines():
        if not line.startswith("\u2014 "):
            continue
        name, _, blob = line[2:].partition(" ")
        blob = base64.b64decode(blob)
        key_id = int.from_bytes(blob[:4], "big")
        for key_name, known_id, key in keys:
            if key_name == name and known_id == key_id:
                try:
                    key.verify(blob[4:], body.encode())
                except InvalidSignature:
                    raise NotVerified(f"the checkpoint's signature by {name} does not verify")
                return origin, size, root
    raise NotVerified("the checkpoint is not signed by a known key")


# ---- the tree ------------------------------------------------------------

def node(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def verify_inclusion(index, size, leaf, proof, root):
    """RFC 9162, section 2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node(p, r)
            while not (fn & 1) and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def h(text, what):
    try:
        b = bytes.fromhex(text)
    except (ValueError, TypeError):
        b = b""
    if len(b) != 32:
        raise NotVerified(f"{what} is not 64 hex digits")
    return b


def verify(document, keys):
    packet, claimed = document.get("packet"), document.get("sha256")
    if not isinstance(packet, dict) or not isinstance(claimed, str):
        raise Unreadable("not a review packet: it needs \"packet\" and \"sha256\"")
    actual = hashlib.sha256(canonical(packet).encode("utf-8")).hexdigest()
    if actual != claimed:
        raise NotVerified(f"the packet was altered: its content hashes to {actual}, the document says {claimed}")
    evidence = document.get("evidence")
    if not isinstance(evidence, dict) or evidence.get("format") != "trellis-evidence/1":
        raise NotVerified("the packet carries no trellis-evidence/1 evidence")
    origin, size, root = check_checkpoint(evidence["checkpoint"], keys)
    if evidence.get("not_yet_covered"):
        raise NotVerified("some events the packet rests on are not covered by the checkpoint yet")
    rep_stream = "rep-" + str(packet.get("rep_id"))
    rep_events = 0
    for e in evidence["events"]:
        name = f"event {e['event_id']} ({e['stream_id']} version {e['stream_version']})"
        digest = h(e["content_digest"], name + ": its content digest")
        prev = h(e["prev_hash"], name + ": its previous hash")
        event_hash = h(e["hash"], name + ": its hash")
        if hashlib.sha256(prev + int(e["stream_version"]).to_bytes(8, "big") + digest).digest() != event_hash:
            raise NotVerified(f"{name}: its hash is not made of its previous hash, version and digest")
        leaf = hashlib.sha256(b"\x00" + event_hash).digest()
        proof = [h(p, name + ": its proof") for p in e["proof"]]
        if not verify_inclusion(int(e["leaf_index"]), size, leaf, proof, root):
            raise NotVerified(f"{name}: its audit path does not lead to the checkpoint's root")
        if e["stream_id"] == rep_stream:
            rep_events += 1
    if rep_events != packet.get("events_replayed"):
        raise NotVerified(f"the packet rests on {packet.get('events_replayed')} events of the rep, its evidence proves {rep_events}")
    return f"verified: packet {claimed} ({rep_events} events of the rep, {len(evidence['events'])} in all) is in the log {origin} of {size} events"


def main(argv):
    if len(argv) == 3 and argv[1] == "--canonical":
        # For the tests: this script's canonical form of a JSON file.
        with open(argv[2], encoding="utf-8") as f:
            sys.stdout.write(canonical(json.load(f)))
        return 0
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        with open(argv[1], encoding="utf-8") as f:
            document = json.load(f)
        keys = [parse_key(k) for k in argv[2:]]
        print(verify(document, keys))
        return 0
    except NotVerified as e:
        print(f"NOT VERIFIED: {e}")
        return 1
    except (Unreadable, OSError, ValueError, KeyError) as e:
        print(f"error: could not check the packet: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
