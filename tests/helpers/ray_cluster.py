"""One Ray cluster per test session: a head and two worker nodes on this machine."""

import os
import sys

import pytest


def _runtime_env():
    paths = [p for p in sys.path if p and os.path.isdir(p)]
    env = {"PYTHONPATH": os.pathsep.join(paths)}
    env.update({k: v for k, v in os.environ.items() if k.startswith(("SYNARAY_", "LITELLM_"))})
    return {"env_vars": env}


@pytest.fixture(scope="session")
def ray_cluster():
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    if ray.is_initialized():  # a test that connected on its own must not block the cluster
        ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2})
    workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, namespace="synaray", runtime_env=_runtime_env(),
             log_to_driver=False)
    cluster.worker_nodes_started = workers
    yield cluster
    ray.shutdown()
    cluster.shutdown()
