"""Run the Back Market Pro sandbox in a process of its own, for the benchmarks.

    python -m bench.sandbox_server [--latency S] [--page-size-max N]

Prints one JSON line ``{"root_url": ..., "base_url": ..., "api_key": ...}`` once it listens on
127.0.0.1, then serves until its standard input closes (so it never outlives the bench, even
when the bench is killed). Accounts and orders are added through the ``/_sandbox/`` control
endpoints, so its memory and CPU are never counted in the host's figures.
"""

from __future__ import annotations

import argparse
import json
import sys

from backmarket_pro.sandbox import Sandbox

API_KEY = "bench-key-0000000001"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.sandbox_server")
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--orders", type=int, default=0)
    args = parser.parse_args(argv)
    sandbox = Sandbox(host="127.0.0.1", port=0, api_key=API_KEY, orders=args.orders, seed=1, latency=args.latency)
    sandbox.start()
    print(json.dumps({"root_url": sandbox.root_url, "base_url": sandbox.base_url, "api_key": API_KEY}), flush=True)
    try:
        sys.stdin.read()  # until the parent closes our stdin (or dies)
    finally:
        sandbox.stop()


if __name__ == "__main__":
    main()
