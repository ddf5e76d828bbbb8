"""Redis URLs: the Sentinel form, and passwords that never come from the URL when a Secret gives one."""

from __future__ import annotations

import pytest

from pids.connection import SentinelAddress, connect, is_sentinel_url, parse_sentinel_url, without_password
from pids.errors import ConfigError


def test_a_sentinel_url_names_the_sentinels_the_primary_and_the_database() -> None:
    a = parse_sentinel_url("redis+sentinel://s0:26379,s1:26380,s2/mymaster/3")
    assert a == SentinelAddress((("s0", 26379), ("s1", 26380), ("s2", 26379)), "mymaster", 3, True)
    assert parse_sentinel_url(a.url) == a


def test_sentinels_without_a_password_are_said_so_in_the_url() -> None:
    a = parse_sentinel_url("redis+sentinel://s0/m?sentinel_auth=no")
    assert a.db == 0 and not a.authenticate and a.url == "redis+sentinel://s0:26379/m/0?sentinel_auth=no"


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("redis+sentinel://:pw@s0/m", "no credentials"),
        ("redis+sentinel://s0:26379", "<primary name>"),
        ("redis+sentinel://s0/m/x", "<primary name>"),
        ("redis+sentinel://s0:port/m", "not host:port"),
        ("redis+sentinel://s0/m?sentinel_auth=maybe", "yes or no"),
        ("redis+sentinel://s0/m?db=2", "unknown Sentinel URL option"),
        ("redis://s0/0", r"not a redis\+sentinel"),
    ],
)
def test_a_malformed_sentinel_url_is_refused_with_the_reason(url: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        parse_sentinel_url(url)


def test_sentinel_urls_are_told_apart() -> None:
    assert is_sentinel_url("redis+sentinel://s/m") and not is_sentinel_url("redis://h:6379/0")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://:old@h:6379/0", "redis://h:6379/0"),
        ("redis://user:old@h:6379/0", "redis://user@h:6379/0"),
        ("rediss://h:6380/1", "rediss://h:6380/1"),
    ],
)
def test_a_password_in_the_url_is_dropped(url: str, expected: str) -> None:
    assert without_password(url) == expected


def test_the_given_password_replaces_the_urls() -> None:
    kwargs = connect("redis://:stale@h:6379/2", "fresh").connection_pool.connection_kwargs
    assert kwargs["password"] == "fresh" and kwargs["host"] == "h" and kwargs["db"] == 2


def test_a_sentinel_client_authenticates_to_redis_and_to_the_sentinels() -> None:
    client = connect("redis+sentinel://s0,s1/m/1", "pw")
    pool = client.connection_pool
    assert pool.service_name == "m" and pool.connection_kwargs["password"] == "pw" and pool.connection_kwargs["db"] == 1
    assert [s.connection_pool.connection_kwargs["password"] for s in pool.sentinel_manager.sentinels] == ["pw", "pw"]
    unauth = connect("redis+sentinel://s0/m?sentinel_auth=no", "pw").connection_pool.sentinel_manager.sentinels[0]
    assert unauth.connection_pool.connection_kwargs.get("password") is None
