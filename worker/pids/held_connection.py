"""The claim loop's own Redis connection: commands packed by hiredis and sent on one held
connection, without redis-py's Script and pipeline layers (they cost several times the bytes'
own packing and parsing per cycle)."""

from __future__ import annotations

import socket
import struct
from typing import Any

import hiredis
import redis


class HeldConnection:
    """One connection with the client pool's settings, outside the pool's count, used by one
    thread. Once connected (and on every reconnect) its socket blocks, with the read/write
    timeout set in the kernel (SO_RCVTIMEO, SO_SNDTIMEO): Python polls a socket that has its own
    timeout before every send and receive. A Redis that stops answering still fails the call
    after the timeout, as ConnectionError or TimeoutError."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._connection: Any = None

    def call(self, *command: Any) -> Any:
        """One command; an error reply is returned as the exception, not raised. A connection
        error is raised, and the next call connects again."""
        try:
            if self._connection is None:
                self._connection = self._open()
            self._connection.send_packed_command([hiredis.pack_command(command)])
            try:
                return self._connection.read_response()
            except redis.ResponseError as exc:
                return exc
        except (redis.ConnectionError, redis.TimeoutError):
            self.reset()
            raise

    def reset(self) -> None:
        """Drop the connection (after an error, or a failover that made its server a replica)."""
        if self._connection is not None:
            self._connection.disconnect()
        self._connection = None

    def _open(self) -> Any:
        pool = self._client.connection_pool
        connection = pool.connection_class(**pool.connection_kwargs)
        connection.register_connect_callback(self._move_timeout_to_kernel)
        connection.connect()
        return connection

    def _move_timeout_to_kernel(self, connection: Any) -> None:
        """After the handshake, which keeps Python's timeout (redis-py keeps a callback as a weak method)."""
        timeout = connection.socket_timeout
        sock = getattr(connection, "_sock", None)
        if timeout and sock is not None:
            seconds = struct.pack("ll", int(timeout), int(timeout % 1 * 1_000_000))  # struct timeval
            sock.settimeout(None)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, seconds)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, seconds)
