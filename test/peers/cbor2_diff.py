#!/usr/bin/env python3
"""Differential peer for ipcbor's codec (test/unit/codec-cbor2.test.ts).

Reads a file of hex lines, each one CBOR item that ipcbor's decoder accepts.
For each line prints one JSON line: what Python's cbor2 decodes it to, in a
normal form both sides can compute, and cbor2's own (canonical) encoding of
that value as hex, for ipcbor to decode in turn:

  {"ok": true, "value": <normal form>, "reencoded": "<hex>"}
  {"ok": false, "error": "<why cbor2 refused it>"}

Normal form: null and booleans as themselves; every number as
{"num": text}: integers (and floats with an integral value, as a JS number
cannot tell 1.0 from 1) in decimal, "-0", "NaN", "Infinity", "-Infinity", any
other float as "f:" + its 64-bit IEEE bits in hex; text as {"str": s}; bytes
as {"bytes": hex}; arrays as lists; maps as {"map": [[key, value], ...]} in
the order read; anything else as {"other": repr}.

  usage: cbor2_diff.py FILE
"""
import json
import math
import struct
import sys

import cbor2


def norm(v):
    if v is None or isinstance(v, bool):
        return v
    if isinstance(v, int):
        return {"num": str(v)}
    if isinstance(v, float):
        if math.isnan(v):
            return {"num": "NaN"}
        if math.isinf(v):
            return {"num": "Infinity" if v > 0 else "-Infinity"}
        if v == 0 and math.copysign(1.0, v) < 0:
            return {"num": "-0"}
        if v.is_integer():
            return {"num": str(int(v))}
        return {"num": "f:" + struct.pack(">d", v).hex()}
    if isinstance(v, str):
        return {"str": v}
    if isinstance(v, (bytes, bytearray)):
        return {"bytes": bytes(v).hex()}
    if isinstance(v, list):
        return [norm(x) for x in v]
    if isinstance(v, dict):
        return {"map": [[norm(k), norm(x)] for k, x in v.items()]}
    return {"other": repr(v)}


def main():
    with open(sys.argv[1]) as f:
        lines = [line.strip() for line in f if line.strip()]
    out = sys.stdout
    for line in lines:
        try:
            value = cbor2.loads(bytes.fromhex(line))
            result = {"ok": True, "value": norm(value), "reencoded": cbor2.dumps(value, canonical=True).hex()}
        except Exception as e:  # a refusal is a result here, reported per line
            result = {"ok": False, "error": "%s: %s" % (type(e).__name__, e)}
        out.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
