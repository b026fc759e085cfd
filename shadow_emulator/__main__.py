"""``python -m shadow_emulator [--port 5055]``: serve the local AWS emulator until interrupted.

``SHADOW_EMULATOR_LAMBDA_HANDLERS`` (module prefixes separated by commas, e.g. ``emulator_probe.``)
names more Lambda handlers to run in-process besides ``shadow_runtime.*``: tests' probe handlers.
"""

from __future__ import annotations

import argparse
import gc
import os
import signal
import sys
import threading

from .ports import port_in_use


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shadow_emulator", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="localhost", help="host name to listen on (default: localhost)")
    parser.add_argument("--port", type=int, default=5055, help="TCP port (default: 5055)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the shadow and capture sampling (default: 0)")
    parser.add_argument("--no-authorization", action="store_true",
                        help="serve every request unchecked (default: each is authorized as its principal, by iam-simulate)")
    args = parser.parse_args(argv)
    handlers = tuple(p.strip() for p in os.environ.get("SHADOW_EMULATOR_LAMBDA_HANDLERS", "").split(",") if p.strip())
    taken = f"port {args.port} on {args.host} is already in use; stop what uses it or choose another port with --port"
    if port_in_use(args.host, args.port):  # said at once, before moto and the doubles load (seconds of CPU)
        print(f"shadow-emulator: {taken}", file=sys.stderr)
        return 2
    # Loaded with the garbage collector off: what loads is nearly all long-lived (the server then freezes it).
    gc.disable()
    try:
        from .server import EmulatorServer, PortInUseError
    finally:
        gc.enable()
    server = EmulatorServer(args.host, args.port, seed=args.seed, lambda_handlers=handlers,
                            authorization=not args.no_authorization)
    try:
        server.start()
    except PortInUseError:  # taken since the check above
        print(f"shadow-emulator: {taken}", file=sys.stderr)
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
