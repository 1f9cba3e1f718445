"""MLLP (HL7's minimal lower layer protocol): a message framed by VT ... FS CR over TCP, answered by an ACK."""

from __future__ import annotations

import socket

START, END = b"\x0b", b"\x1c\x0d"


class MLLPError(Exception):
    """The LIS could not be reached or did not answer in time; the message stays queued."""


def frame(message: str) -> bytes:
    return START + message.encode("utf-8") + END


def send(host: str, port: int, message: str, timeout: float = 10.0) -> str:
    """Send one framed message and return the framed answer's text (the ACK), or raise :class:`MLLPError`."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as connection:
            connection.sendall(frame(message))
            received = b""
            while END not in received:
                chunk = connection.recv(65536)
                if not chunk:
                    raise MLLPError(f"the LIS at {host}:{port} closed the connection without an answer")
                received += chunk
                if len(received) > 1_000_000:
                    raise MLLPError(f"the LIS at {host}:{port} answered more than 1 MB without an end of message")
    except TimeoutError:
        raise MLLPError(f"no answer from the LIS at {host}:{port} within {timeout:g} s") from None
    except OSError as error:
        raise MLLPError(f"the LIS at {host}:{port} cannot be reached: {error.strerror or error}") from None
    start = received.find(START)
    return received[start + 1 if start >= 0 else 0 : received.find(END)].decode("utf-8", "replace")
