"""Port checks of the emulator, without loading it (the demo and ``python -m shadow_emulator`` ask them first)."""

from __future__ import annotations

import socket


def port_in_use(host: str, port: int) -> bool:
    """Whether something already listens on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((socket.gethostbyname(host), port)) == 0


def free_port() -> int:
    """A port nobody listens on right now (for tests that start their own emulator)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
