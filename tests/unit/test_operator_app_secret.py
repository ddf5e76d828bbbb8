"""The connection Secret <cluster>-app: what an application reads to reach the cluster's Redis."""

from __future__ import annotations

import base64
from typing import Any

import redis

from pids_operator.app_secret import build_app_secret, connection_details, publish_app_secret
from pids_operator.spec import ClusterSpec

OWNER = {
    "apiVersion": "pids.dev/v1alpha1",
    "kind": "PidsCluster",
    "metadata": {"name": "demo", "namespace": "ns1", "uid": "1234-uid"},
}


def external(url: str, secret: str = "") -> ClusterSpec:
    ref = {"passwordSecretRef": {"name": secret, "key": "pw"}} if secret else {}
    return ClusterSpec.parse({"redis": {"external": {"url": url, **ref}}})


class SecretsOnly:
    """Just the two Kube calls publish_app_secret makes."""

    def __init__(self, secrets: dict[str, str]) -> None:
        self.secrets = secrets
        self.applied: list[dict[str, Any]] = []

    def secret_value(self, namespace: str, name: str, key: str) -> str | None:
        return self.secrets.get(f"{namespace}/{name}/{key}")

    def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        self.applied.append(manifest)
        return manifest


def test_managed_redis_details_name_the_service_and_carry_the_password() -> None:
    details = connection_details(OWNER, ClusterSpec.parse({}), "s3cret")
    assert details == {
        "url": "redis://:s3cret@demo-redis.ns1.svc:6379/0",
        "host": "demo-redis.ns1.svc",
        "port": "6379",
        "password": "s3cret",
        "cluster": "demo",
    }


def test_secret_is_a_child_of_the_cluster_with_base64_data() -> None:
    secret = build_app_secret(OWNER, ClusterSpec.parse({}), "pw")
    assert secret["metadata"]["name"] == "demo-app" and secret["metadata"]["namespace"] == "ns1"
    assert secret["metadata"]["ownerReferences"][0]["uid"] == "1234-uid"
    assert base64.b64decode(secret["data"]["url"]).decode() == "redis://:pw@demo-redis.ns1.svc:6379/0"
    assert "stringData" not in secret  # server-side apply of data is idempotent


def test_a_password_with_url_characters_survives_the_url() -> None:
    details = connection_details(
        OWNER, external("rediss://app@redis.example.com:6380/2?ssl_cert_reqs=none", "ext"), "p@ss:w/rd %"
    )
    assert details["url"] == "rediss://app:p%40ss%3Aw%2Frd%20%25@redis.example.com:6380/2?ssl_cert_reqs=none"
    kwargs = redis.Redis.from_url(details["url"]).connection_pool.connection_kwargs
    assert (kwargs["username"], kwargs["password"], kwargs["host"], kwargs["port"], kwargs["db"]) == (
        "app",
        "p@ss:w/rd %",
        "redis.example.com",
        6380,
        2,
    )


def test_external_redis_without_a_password_secret_keeps_the_url_as_given() -> None:
    details = connection_details(OWNER, external("redis://:inline@10.0.0.5/0"), None)
    assert details["url"] == "redis://:inline@10.0.0.5:6379/0" and details["password"] == "inline"
    bare = connection_details(OWNER, external("redis://[fd00::5]:7000/1"), None)
    assert (bare["url"], bare["host"], bare["port"], bare["password"]) == (
        "redis://[fd00::5]:7000/1",
        "fd00::5",
        "7000",
        "",
    )


def test_publish_reads_the_password_from_the_clusters_secret() -> None:
    kube = SecretsOnly({"ns1/ext-auth/pw": "from-secret"})
    assert publish_app_secret(kube, OWNER, external("redis://r.example:6379/0", "ext-auth"))  # type: ignore[arg-type]
    (secret,) = kube.applied
    assert base64.b64decode(secret["data"]["password"]).decode() == "from-secret"


def test_publish_waits_for_a_missing_password_secret() -> None:
    kube = SecretsOnly({})
    assert not publish_app_secret(kube, OWNER, external("redis://r.example:6379/0", "ext-auth"))  # type: ignore[arg-type]
    assert kube.applied == []


def test_a_sentinel_cluster_is_reached_by_its_sentinel_url_with_the_password_apart() -> None:
    details = connection_details(OWNER, ClusterSpec.parse({"redis": {"managed": {"replicas": 3}}}), "s3cret")
    assert details["url"].startswith("redis+sentinel://demo-redis-0.demo-redis-pods.ns1.svc:26379,")
    assert "s3cret" not in details["url"] and details["password"] == "s3cret"
    assert (details["host"], details["port"]) == ("demo-redis-0.demo-redis-pods.ns1.svc", "26379")
