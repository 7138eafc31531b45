"""HTTP as a hostile client speaks it, on raw sockets: huge bodies, slow or endless headers,
connections left open. And a server process's memory as Linux counts it."""

from __future__ import annotations

import select
import socket
import time
from pathlib import Path

MIB = 1024 * 1024


def connect(port: int, timeout: float = 10) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def head(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [
        f"{method} {path} HTTP/1.1",
        "Host: 127.0.0.1",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def status_of(answer: bytes) -> int | None:
    """The status of an HTTP answer's first line, or None when there is none."""
    first = answer.split(b"\r\n", 1)[0].split()
    return int(first[1]) if len(first) >= 2 and first[0].startswith(b"HTTP/") else None


def read_answer(sock: socket.socket, timeout: float) -> bytes:
    """What the server sends until it closes the connection or `timeout` passes with no
    byte; b"" when it closed (or reset) without a word."""
    sock.settimeout(timeout)
    chunks: list[bytes] = []
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
            if b"\r\n\r\n" in b"".join(chunks):
                sock.settimeout(1)  # the rest of a short answer follows at once
    except (TimeoutError, ConnectionResetError):
        pass
    return b"".join(chunks)


def post_huge(port: int, path: str, size: int, *, chunked: bool) -> tuple[int | None, int]:
    """POST `size` bytes to `path`, with a Content-Length or chunked, stopping when the
    server answers or closes. Returns the answer's status (None if the server reset the
    connection before any could be read) and the body bytes sent."""
    headers = {"Content-Type": "application/json"}
    headers["Transfer-Encoding" if chunked else "Content-Length"] = (
        "chunked" if chunked else str(size)
    )
    sock = connect(port)
    sent = 0
    answer = b""
    piece = b"x" * MIB
    try:
        sock.sendall(head("POST", path, headers))
        while sent < size:
            if select.select([sock], [], [], 0)[0]:
                break  # the server answered early
            data = piece[: min(MIB, size - sent)]
            sock.sendall(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
            sent += len(data)
        else:
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        answer = read_answer(sock, timeout=60)
    except (BrokenPipeError, ConnectionResetError):
        answer = read_answer(sock, timeout=1)
    finally:
        sock.close()
    return status_of(answer), sent


def slow_connections(port: int, count: int) -> list[socket.socket]:
    """`count` connections, each having sent half a request head, then nothing."""
    opened = []
    for _ in range(count):
        try:
            sock = connect(port, timeout=5)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        except OSError:
            break  # a server out of descriptors (or one shedding them) may refuse some
        opened.append(sock)
    return opened


def closed_by_server(sock: socket.socket, timeout: float) -> bool:
    """Whether the server closes `sock` (sending nothing more) within `timeout` s."""
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not sock.recv(65536):
                return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return False


def memory_kib(pid: int, field: str) -> int:
    """A line of /proc/PID/status in KiB: VmRSS (resident now), VmHWM (its peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)
