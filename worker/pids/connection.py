"""Opening Redis connections the same way everywhere (password from a Secret wins)."""

from __future__ import annotations

import redis


def connect(url: str, password: str | None = None, **options: object) -> redis.Redis:
    settings: dict[str, object] = {
        "socket_timeout": 10.0, "socket_connect_timeout": 3.0, "health_check_interval": 30,
        "decode_responses": True,  # hiredis decodes in C
    }
    settings.update(options)
    if password:
        settings["password"] = password
    return redis.Redis.from_url(url, **settings)  # type: ignore[arg-type]
