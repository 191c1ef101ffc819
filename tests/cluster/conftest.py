"""One cluster per test module (Kamailio and three nodes take a while to start); each test starts with every node
up in its default configuration, restarted if a test killed, drained or reconfigured it."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from clusterkit import KAMAILIO, Cluster
from sippkit import SIPP


@pytest.fixture(scope="module")
def running_cluster(tmp_path_factory: pytest.TempPathFactory, prompt_cache: Path) -> Iterator[Cluster]:
    if KAMAILIO is None or SIPP is None:
        pytest.skip("kamailio and sipp are needed (apt-get install kamailio sip-tester)")
    cluster = Cluster.start(tmp_path_factory.mktemp("cluster"), prompt_cache)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def cluster(running_cluster: Cluster) -> Cluster:
    for node in running_cluster.nodes:
        if not node.up or node.env or node.metrics().get("ivr_sip_draining", 0):  # a failed test's drain too
            running_cluster.restart(node)
    running_cluster.front.skip_log()
    return running_cluster
