"""A real Sentinel-monitored Redis set on loopback: one primary, replicas and three Sentinels,
Debian's redis-server and redis-sentinel 7.0 (`make deps` installs them), all with a password."""

from __future__ import annotations

import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import redis

from pids.connection import SentinelAddress
from pids.embedded import free_port

SERVICE = "pids"
PASSWORD = "sentinel-test-pw"
DOWN_AFTER_MS = 1000


def debian_binaries() -> tuple[str, str]:
    """(redis-server, redis-sentinel) of one installation: Sentinel needs a server of its version."""
    sentinel = shutil.which("redis-sentinel")
    if sentinel is None:
        raise RuntimeError("redis-sentinel not found: `make deps` installs Debian's redis-server and redis-sentinel")
    server = Path(sentinel).with_name("redis-server")
    if not server.exists():
        raise RuntimeError(f"no redis-server next to {sentinel}")
    return str(server), sentinel


class SentinelSet:
    def __init__(self, replicas: int = 2, sentinels: int = 3) -> None:
        self.server_binary, self.sentinel_binary = debian_binaries()
        self.dir = tempfile.TemporaryDirectory(prefix="pids-sentinel-")
        self.redis_ports = [free_port() for _ in range(replicas + 1)]
        self.sentinel_ports = [free_port() for _ in range(sentinels)]
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def address(self) -> SentinelAddress:
        return SentinelAddress(tuple(("127.0.0.1", p) for p in self.sentinel_ports), SERVICE)

    @property
    def url(self) -> str:
        return self.address.url

    def _spawn(self, port: int, args: list[str]) -> None:
        with open(Path(self.dir.name) / f"{port}.log", "ab") as log:
            self.processes[port] = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, process_group=0)

    def start_redis(self, port: int, primary_port: int | None) -> None:
        data = Path(self.dir.name) / f"data-{port}"
        data.mkdir(exist_ok=True)
        args = [
            self.server_binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(data),
            "--requirepass",
            PASSWORD,
            "--masterauth",
            PASSWORD,
            "--appendonly",
            "yes",
            "--save",
            "",
            "--replica-announce-ip",
            "127.0.0.1",
            "--repl-diskless-sync-delay",  # a full sync starts at once (the default waits 5 s for more replicas)
            "0",
            "--loglevel",
            "warning",
        ]
        if primary_port is not None:
            args += ["--replicaof", "127.0.0.1", str(primary_port)]
        self._spawn(port, args)

    def start(self) -> SentinelSet:
        primary, *replicas = self.redis_ports
        self.start_redis(primary, None)
        for port in replicas:
            self.start_redis(port, primary)
        self.wait_synced(primary, len(replicas))
        quorum = len(self.sentinel_ports) // 2 + 1
        # each Sentinel starts knowing the others and the replicas, as its own config rewrite
        # would record them: no wait for their hello messages and INFO polls to find each other
        ids = {port: secrets.token_hex(20) for port in self.sentinel_ports}
        for port in self.sentinel_ports:
            conf = Path(self.dir.name) / f"sentinel-{port}.conf"
            conf.write_text(
                "\n".join(
                    [
                        f"port {port}",
                        "bind 127.0.0.1",
                        f"dir {self.dir.name}",
                        f"requirepass {PASSWORD}",
                        f"sentinel monitor {SERVICE} 127.0.0.1 {primary} {quorum}",
                        f"sentinel auth-pass {SERVICE} {PASSWORD}",
                        f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}",
                        f"sentinel failover-timeout {SERVICE} 5000",
                        f"sentinel myid {ids[port]}",
                        *(f"sentinel known-replica {SERVICE} 127.0.0.1 {r}" for r in replicas),
                        *(
                            f"sentinel known-sentinel {SERVICE} 127.0.0.1 {other} {ids[other]}"
                            for other in self.sentinel_ports
                            if other != port
                        ),
                        "",
                    ]
                )
            )
            self._spawn(port, [self.sentinel_binary, str(conf)])
        self.wait_until(
            lambda: all(self.sentinel(p).sentinel_get_master_addr_by_name(SERVICE) for p in self.sentinel_ports),
            "every Sentinel knows the primary",
        )
        self.wait_until(
            lambda: all(
                len(self.sentinel(p).sentinel_sentinels(SERVICE)) == len(self.sentinel_ports) - 1
                for p in self.sentinel_ports
            ),
            "the Sentinels found each other",
        )
        return self

    def redis(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, password=PASSWORD, socket_timeout=2, decode_responses=True)

    def sentinel(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, password=PASSWORD, socket_timeout=2, decode_responses=True)

    def primary_port(self) -> int:
        """The primary as the first answering Sentinel names it."""
        for port in self.sentinel_ports:
            try:
                _, primary = self.sentinel(port).sentinel_get_master_addr_by_name(SERVICE)
                return int(primary)
            except redis.RedisError:
                continue
        raise RuntimeError("no Sentinel answered")

    def wait_synced(self, primary: int, replicas: int) -> None:
        """Until `replicas` replicas are online and have every write the primary had when asked
        (replication is asynchronous: one online may still lack the last writes)."""
        written = int(self.redis(primary).info("replication")["master_repl_offset"])

        def synced() -> bool:
            info = self.redis(primary).info("replication")
            return int(info.get("connected_slaves", 0)) >= replicas and all(
                info.get(f"slave{i}", {}).get("state") == "online"
                and int(info.get(f"slave{i}", {}).get("offset", -1)) >= written
                for i in range(replicas)
            )

        self.wait_until(synced, f"{replicas} replicas in sync with {primary}")

    def kill(self, port: int) -> None:
        process = self.processes.pop(port)
        process.kill()
        process.wait()

    @staticmethod
    def wait_until(check: Callable[[], object], what: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if check():
                    return
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out waiting until {what}")
            time.sleep(0.1)

    def close(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
            process.wait()
        self.processes.clear()
        self.dir.cleanup()
