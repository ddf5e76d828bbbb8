"""Opening Redis connections the same way everywhere: one Redis by URL, or the primary of a
Sentinel-monitored set, with the password from a Secret winning over one in the URL.

Sentinel URLs name the Sentinels, the monitored primary and the database:

    redis+sentinel://sentinel-0:26379,sentinel-1:26379/mymaster/0[?sentinel_auth=no]

The Sentinels are sent the Redis password too, unless `sentinel_auth=no` (Sentinels that
require no password). No credentials ever travel in the URL.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit, urlunsplit

import redis
from redis.sentinel import Sentinel

from .errors import ConfigError

PASSWORD_ENV = "PIDS_REDIS_PASSWORD"  # from a Secret; wins over a password in the URL
SENTINEL_SCHEME = "redis+sentinel"
SENTINEL_PORT = 26379
DEFAULTS: dict[str, object] = {
    "socket_timeout": 10.0,
    "socket_connect_timeout": 3.0,
    "health_check_interval": 30,
    "decode_responses": True,  # hiredis decodes in C
}
# Sentinel queries are small and a dead Sentinel must not hold up finding the primary
SENTINEL_TIMEOUT_SECONDS = 1.0


@dataclass(frozen=True)
class SentinelAddress:
    """What a redis+sentinel URL says: where the Sentinels are, which primary, which database."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    authenticate: bool = True

    @property
    def url(self) -> str:
        hosts = ",".join(f"{h}:{p}" for h, p in self.sentinels)
        query = "" if self.authenticate else "?sentinel_auth=no"
        return f"{SENTINEL_SCHEME}://{hosts}/{self.service}/{self.db}{query}"


def is_sentinel_url(url: str) -> bool:
    return url.startswith(SENTINEL_SCHEME + "://")


def sentinel_host_port(address: str) -> tuple[str, int]:
    """("host", port) of "host:port", or of "host" on the Sentinel port."""
    host, _, port = address.rpartition(":") if ":" in address else (address, "", str(SENTINEL_PORT))
    if not host or not port.isdigit():
        raise ConfigError(f"Sentinel address {address!r} is not host:port")
    return host, int(port)


def parse_sentinel_url(url: str) -> SentinelAddress:
    """The parts of a redis+sentinel URL; ConfigError naming what is wrong."""
    parts = urlsplit(url)
    if parts.scheme != SENTINEL_SCHEME:
        raise ConfigError(f"not a {SENTINEL_SCHEME}:// URL: {url!r}")
    if "@" in parts.netloc:
        raise ConfigError("a Sentinel URL carries no credentials: the password comes from PIDS_REDIS_PASSWORD")
    sentinels = [sentinel_host_port(h) for h in parts.netloc.split(",") if h]
    path = [p for p in parts.path.split("/") if p]
    if not sentinels or not path or len(path) > 2 or (len(path) == 2 and not path[1].isdigit()):
        raise ConfigError(f"expected {SENTINEL_SCHEME}://host:port[,host:port...]/<primary name>[/<db>], got {url!r}")
    query = parse_qs(parts.query)
    unknown = set(query) - {"sentinel_auth"}
    if unknown:
        raise ConfigError(f"unknown Sentinel URL option(s): {', '.join(sorted(unknown))}")
    auth = query.get("sentinel_auth", ["yes"])[-1]
    if auth not in ("yes", "no"):
        raise ConfigError(f"sentinel_auth must be yes or no, got {auth!r}")
    return SentinelAddress(tuple(sentinels), path[0], int(path[1]) if len(path) == 2 else 0, auth == "yes")


def without_password(url: str) -> str:
    """The URL minus any password in it (the user name stays)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}@{host}" if user else host))


def connect(url: str, password: str | None = None, **options: object) -> redis.Redis:
    """A client of the Redis at `url`; through Sentinel, always of the current primary."""
    settings = {**DEFAULTS, **options}
    if password:
        settings["password"] = password
    if is_sentinel_url(url):
        return _sentinel_primary(parse_sentinel_url(url), password, settings)
    if password:
        url = without_password(url)  # from_url lets a URL's password win over the keyword
    return redis.Redis.from_url(url, **settings)


def _sentinel_primary(address: SentinelAddress, password: str | None, settings: dict[str, object]) -> redis.Redis:
    sentinel_settings: dict[str, object] = {
        "socket_timeout": SENTINEL_TIMEOUT_SECONDS,
        "socket_connect_timeout": SENTINEL_TIMEOUT_SECONDS,
    }
    if password and address.authenticate:
        sentinel_settings["password"] = password
    sentinel = Sentinel(list(address.sentinels), sentinel_kwargs=sentinel_settings)  # type: ignore[no-untyped-call]
    # check_connection: a connection to a freshly found primary is PINGed before use, so a
    # stale answer from a Sentinel fails over to asking again instead of failing the command
    return sentinel.master_for(  # type: ignore[no-any-return,no-untyped-call]
        address.service, db=address.db, check_connection=True, **settings
    )
