"""``python -m shadow_emulator [--port 5055]``: serve the local AWS emulator until interrupted.

``SHADOW_EMULATOR_LAMBDA_HANDLERS`` (module prefixes separated by commas, e.g. ``emulator_probe.``)
names more Lambda handlers to run in-process besides ``shadow_runtime.*``: tests' probe handlers.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from .server import EmulatorServer, PortInUseError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shadow_emulator", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="localhost", help="host name to listen on (default: localhost)")
    parser.add_argument("--port", type=int, default=5055, help="TCP port (default: 5055)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the shadow and capture sampling (default: 0)")
    args = parser.parse_args(argv)
    handlers = tuple(p.strip() for p in os.environ.get("SHADOW_EMULATOR_LAMBDA_HANDLERS", "").split(",") if p.strip())
    server = EmulatorServer(args.host, args.port, seed=args.seed, lambda_handlers=handlers)
    try:
        server.start()
    except PortInUseError as error:
        print(f"shadow-emulator: {error}; stop what uses it or choose another port with --port", file=sys.stderr)
        return 2
    stopped = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopped.set())
    print(f"shadow-emulator: serving AWS on {server.url} (Ctrl-C stops it)", flush=True)
    stopped.wait()
    server.stop()
    print("shadow-emulator: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
