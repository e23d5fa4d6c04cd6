"""``python -m aggregator.devnet.venues --host 127.0.0.1 --port N``: serve the venue APIs (uvicorn)."""

from __future__ import annotations

import argparse

from aggregator.devnet.venues.server import serve_forever


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m aggregator.devnet.venues", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    serve_forever(args.host, args.port)


if __name__ == "__main__":
    main()
