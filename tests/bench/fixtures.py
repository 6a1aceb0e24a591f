#!/usr/bin/env python3
"""Writes tests/bench/fixtures/ for the criterion micro-benchmarks (tests/bench/micro.rs):
gateway YAMLs with inline RS256/ES256 keys (cache on/off), tokens valid around the fake host's
clock (1_800_000_000), and the small (~250 B) and ~10 KB Payment bodies as JSON and protobuf."""
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import configs  # noqa: E402
import jwt  # noqa: E402
import payload  # noqa: E402

FAKE_NOW = 1_800_000_000


def main():
    out = os.path.join(HERE, "fixtures")
    os.makedirs(out, exist_ok=True)
    keys = jwt.make_keys(tempfile.mkdtemp(prefix="meshgate-fixtures-"), now=FAKE_NOW - 60)
    for name, cache in (("gateway-cache.yaml", True), ("gateway-nocache.yaml", False)):
        with open(os.path.join(out, name), "w") as f:
            f.write("# Written by tests/bench/fixtures.py (JSON is YAML).\n")
            f.write(configs.gateway_yaml("../../../proto", keys, cache, access_log=True))
    for alg in ("RS256", "ES256"):
        with open(os.path.join(out, f"{alg.lower()}.jwt"), "w") as f:
            f.write(keys[alg]["token"])
    for name, tags in (("small", 0), ("big", 96)):
        js, pb = payload.payment(tags)
        with open(os.path.join(out, f"{name}.json"), "wb") as f:
            f.write(js)
        with open(os.path.join(out, f"{name}.pb"), "wb") as f:
            f.write(pb)


if __name__ == "__main__":
    main()
