"""Ports for servers the tests start with a fixed port number (JupyterLab, the launcher's stand-in).

Why not ``bind(("127.0.0.1", 0))``: that hands out a port from the kernel's ephemeral range, and between
closing the probe and the server's own bind, any client connection of another test (the batch tests open
thousands) may take the same number as its local port; the server then fails with "Address already in use"
(CI saw it once). Ports below the ephemeral range (32768 on Linux) are never given to client connections.
"""

from __future__ import annotations

import random
import socket

#: Below Linux's default ephemeral range (32768-60999) and above the well-known and common service ports.
LOW, HIGH = 20000, 32767


def free_port() -> int:
    """A random port outside the ephemeral range that is free right now."""
    for _ in range(200):
        port = random.randint(LOW, HIGH)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {LOW}-{HIGH}")
