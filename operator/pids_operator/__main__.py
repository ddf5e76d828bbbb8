"""`python -m pids_operator`: run the Kopf operator with PIDS's settings.

Namespaces come from PIDS_OPERATOR_NAMESPACES (or POD_NAMESPACE), cluster-wide
with PIDS_OPERATOR_CLUSTERWIDE=true; PIDS_OPERATOR_PEERING names the KopfPeering
object so that of several replicas only one acts (each draws a random priority).
"""

from __future__ import annotations

import logging
import random

import kopf

from . import handlers  # noqa: F401  (registers the handlers)
from .config import OperatorConfig


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = OperatorConfig.from_env()
    clusterwide = config.clusterwide or not config.namespaces
    if clusterwide and not config.clusterwide:
        logging.getLogger("pids_operator").warning(
            "no namespace given (PIDS_OPERATOR_NAMESPACES/POD_NAMESPACE): watching all"
        )
    kopf.run(
        clusterwide=clusterwide,
        namespaces=() if clusterwide else config.namespaces,
        standalone=not config.peering,
        peering_name=config.peering or None,
        priority=random.randint(1, 2**31 - 1),
        liveness_endpoint=f"http://0.0.0.0:{config.health_port}/healthz",
    )


if __name__ == "__main__":
    main()
