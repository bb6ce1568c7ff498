"""The files under `cluster/`, checked offline with Ray's own validators.

- Launcher files (`ray up`): loaded as `ray up` loads them, filled out with the provider's
  defaults by `prepare_config`, then checked by `validate_config` (the JSON schema
  `ray-schema.json` plus Ray's cross-field checks: head type among the node types, the sum of
  `min_workers` within `max_workers`...). The cloud look-ups that `ray up` does next (instance
  types, IAM, subnets) need an account and are not run; every node type states its resources,
  so validation does not depend on them.
- `runtime_env.yaml`: read as `ray job submit --runtime-env` reads it, then `RuntimeEnv`; and
  packaged as the job upload would be.
- `kuberay/rayjob.yaml`: its structure, its RayCluster spec through the conversion the KubeRay
  autoscaler applies (which ends in `validate_config`), its `runtimeEnvYAML` through
  `RuntimeEnv`.
- Every file: no secrets.

Each validator also gets a broken input, so a passing file means something.
"""

from __future__ import annotations

import copy
import re
import zipfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import ray
import yaml
from ray.autoscaler._private.kuberay.autoscaling_config import (
    _derive_autoscaling_config_from_ray_cr,
)
from ray.autoscaler._private.util import prepare_config, validate_config
from ray.dashboard.modules.dashboard_sdk import parse_runtime_env_args
from ray.runtime_env import RuntimeEnv

REPO = Path(__file__).resolve().parents[2]
CLUSTER = REPO / "cluster"
LAUNCHERS = ["aws.yaml", "gcp.yaml", "local.yaml"]
RAYJOB = CLUSTER / "kuberay" / "rayjob.yaml"
RUNTIME_ENV = CLUSTER / "runtime_env.yaml"
RAY_VERSION = "2.60.0"
IMAGE = f"rayproject/ray:{RAY_VERSION}-py311"


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def ray_up_validate(config: dict) -> dict:
    """What `ray up` does with a config before it talks to a cloud; returns the result."""
    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    return prepared


def node_types(prepared: dict) -> dict[str, dict]:
    return prepared["available_node_types"]


# --- launcher files: Ray's validator ----------------------------------------------------------
@pytest.mark.parametrize("name", LAUNCHERS)
def test_launcher_passes_ray_validator(name: str) -> None:
    prepared = ray_up_validate(load(CLUSTER / name))
    assert prepared["provider"]["type"] == name.removesuffix(".yaml")
    assert prepared["head_node_type"] in node_types(prepared)


def _aws() -> dict:
    return load(CLUSTER / "aws.yaml")


def _unknown_top_level_key(c: dict) -> None:
    c["setup_command"] = ["pip install synaray"]  # a typo of setup_commands


def _wrong_type(c: dict) -> None:
    c["max_workers"] = "8"


def _command_not_a_string(c: dict) -> None:
    c["setup_commands"] = [["pip", "install", "synaray"]]


def _timeout_not_a_number(c: dict) -> None:
    c["idle_timeout_minutes"] = "ten"


def _unknown_node_type_key(c: dict) -> None:
    c["available_node_types"]["worker"]["min_worker"] = 1


def _node_type_without_resources(c: dict) -> None:
    del c["available_node_types"]["worker"]["resources"]


def _negative_resources(c: dict) -> None:
    c["available_node_types"]["worker"]["resources"] = {"CPU": -1}


def _head_type_missing(c: dict) -> None:
    c["head_node_type"] = "no_such_type"


def _min_workers_over_max(c: dict) -> None:
    c["max_workers"] = 1


@pytest.mark.parametrize(("break_it", "error", "match"), [
    (_unknown_top_level_key, jsonschema.ValidationError, "setup_command"),
    (_wrong_type, jsonschema.ValidationError, "is not of type 'integer'"),
    (_command_not_a_string, jsonschema.ValidationError, "is not of type 'string'"),
    (_timeout_not_a_number, jsonschema.ValidationError, "is not of type 'number'"),
    (_unknown_node_type_key, jsonschema.ValidationError, "min_worker"),
    (_node_type_without_resources, jsonschema.ValidationError, "'resources' is a required"),
    (_negative_resources, jsonschema.ValidationError, "less than the minimum"),
    (_head_type_missing, ValueError, "head_node_type"),
    (_min_workers_over_max, ValueError, "min_workers"),
])
def test_ray_validator_rejects_a_broken_launcher(break_it, error, match) -> None:
    config = _aws()
    break_it(config)
    with pytest.raises(error, match=match):
        ray_up_validate(config)


def test_ray_validator_rejects_a_broken_local_launcher() -> None:
    config = load(CLUSTER / "local.yaml")
    config["auth"]["ssh_password"] = "not a field"
    with pytest.raises(jsonschema.ValidationError, match="ssh_password"):
        ray_up_validate(config)


# --- launcher files: what synaray needs from them --------------------------------------------
def _start_commands(prepared: dict) -> str:
    return "\n".join(prepared["head_start_ray_commands"] + prepared["worker_start_ray_commands"])


@pytest.mark.parametrize("name", LAUNCHERS)
def test_launcher_pins_the_ray_image(name: str) -> None:
    """Same Ray on every node as on the machine running `ray up` (the launcher requires it)."""
    config = load(CLUSTER / name)
    assert config["docker"]["image"] == IMAGE
    assert ray.__version__.rsplit(".", 1)[0] == RAY_VERSION.rsplit(".", 1)[0]


@pytest.mark.parametrize("name", LAUNCHERS)
def test_launcher_installs_synaray_on_every_node(name: str) -> None:
    prepared = ray_up_validate(load(CLUSTER / name))
    for key in ("head_setup_commands", "worker_setup_commands"):
        assert any(re.search(r"pip install .*synaray", cmd) for cmd in prepared[key]), key


@pytest.mark.parametrize("name", LAUNCHERS)
def test_launcher_file_mounts_exist_from_the_repo_root(name: str) -> None:
    for local in load(CLUSTER / name).get("file_mounts", {}).values():
        assert (REPO / local).exists(), local


@pytest.mark.parametrize("name", LAUNCHERS)
def test_launcher_has_no_gpus(name: str) -> None:
    prepared = ray_up_validate(load(CLUSTER / name))
    assert not re.search(r"gpu|cu\d", prepared["docker"]["image"])
    for node_type in node_types(prepared).values():
        assert node_type["resources"].get("GPU", 0) == 0
        config = node_type["node_config"]
        assert "guestAccelerators" not in config
        assert not re.match(r"(p\d|g\d|inf\d|trn\d)", config.get("InstanceType", ""))


@pytest.mark.parametrize("name", ["aws.yaml", "gcp.yaml"])
def test_cloud_head_is_on_demand_and_takes_no_cpu_work(name: str) -> None:
    prepared = ray_up_validate(load(CLUSTER / name))
    head = node_types(prepared)[prepared["head_node_type"]]
    assert head["resources"]["CPU"] == 0
    assert "InstanceMarketOptions" not in head["node_config"]
    assert "scheduling" not in head["node_config"]
    workers = [t for n, t in node_types(prepared).items() if n != prepared["head_node_type"]]
    assert sum(t["min_workers"] for t in workers) >= 1  # evaluators need nodes to spread over


@pytest.mark.parametrize("name", LAUNCHERS)
def test_launcher_keeps_the_dashboard_off_the_network(name: str) -> None:
    prepared = ray_up_validate(load(CLUSTER / name))
    assert "dashboard-host" not in _start_commands(prepared)


# --- runtime_env.yaml -------------------------------------------------------------------------
def test_runtime_env_passes_ray_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # `ray job submit` runs from the repository root
    env = parse_runtime_env_args(runtime_env=str(RUNTIME_ENV.relative_to(REPO)))
    validated = RuntimeEnv(**env)
    # RuntimeEnv passes unknown keys on to plugins; a typo would be silently ignored.
    assert set(env) <= RuntimeEnv.known_fields, set(env) - RuntimeEnv.known_fields
    assert validated["working_dir"] == "."


def test_runtime_env_settings() -> None:
    env_vars = load(RUNTIME_ENV)["env_vars"]
    assert env_vars["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"
    assert Path(env_vars["SYNARAY_CACHE_DIR"]).is_absolute()
    # Set, it would send every node's evaluators to one loopback server.
    assert "SYNARAY_LOCAL_LM_API_BASE" not in env_vars


@pytest.mark.parametrize(("text", "error"), [
    ("env_vars:\n  LITELLM_LOCAL_MODEL_COST_MAP: True\n", TypeError),  # unquoted: a bool
    ("excludes: .git\n", TypeError),
    ("working_dir: no/such/dir\n", ValueError),
])
def test_ray_runtime_env_validation_rejects_a_broken_file(text: str, error: type) -> None:
    with pytest.raises(error):
        RuntimeEnv(**yaml.safe_load(text))


def test_runtime_env_upload_is_small_and_clean(tmp_path: Path) -> None:
    """Package the working dir as the job upload does (excludes and .gitignore applied)."""
    from ray._private.runtime_env.packaging import GCS_STORAGE_MAX_SIZE, create_package

    package = tmp_path / "working_dir.zip"
    create_package(str(REPO), package, include_gitignore=True,
                   excludes=load(RUNTIME_ENV)["excludes"])
    names = zipfile.ZipFile(package).namelist()
    assert package.stat().st_size < GCS_STORAGE_MAX_SIZE
    assert "pyproject.toml" in names
    assert not [n for n in names if n.startswith((".git/", ".venv/")) or "__pycache__" in n]


# --- kuberay/rayjob.yaml ----------------------------------------------------------------------
def _containers(spec: dict) -> list[dict]:
    groups = [spec["rayClusterSpec"]["headGroupSpec"], *spec["rayClusterSpec"]["workerGroupSpecs"]]
    return [c for g in groups for c in g["template"]["spec"]["containers"]]


def test_rayjob_structure() -> None:
    job = load(RAYJOB)
    assert job["apiVersion"] == "ray.io/v1"
    assert job["kind"] == "RayJob"
    spec = job["spec"]
    entrypoint = spec["entrypoint"].split()
    assert entrypoint[:3] == ["synaray", "fit", "examples/sports_population_search.yaml"]
    assert "--engine ray" in spec["entrypoint"] and "--address auto" in spec["entrypoint"]
    assert entrypoint[entrypoint.index("--storage") + 1].startswith("s3://")
    assert spec["shutdownAfterJobFinishes"] is True
    assert spec["rayClusterSpec"]["rayVersion"] == RAY_VERSION
    assert spec["rayClusterSpec"]["workerGroupSpecs"]
    assert {c["image"] for c in _containers(spec)} == {IMAGE}


def test_rayjob_cluster_passes_ray_validator() -> None:
    """The KubeRay autoscaler turns the RayCluster spec into a config and validates it."""
    job = load(RAYJOB)
    config = _derive_autoscaling_config_from_ray_cr(
        {"metadata": {"name": job["metadata"]["name"], "namespace": "default"},
         "spec": job["spec"]["rayClusterSpec"]})
    head = config["available_node_types"]["headgroup"]
    assert head["resources"]["CPU"] == 0
    for node_type in config["available_node_types"].values():
        assert node_type["resources"].get("GPU", 0) == 0


def test_ray_validator_rejects_a_broken_rayjob_cluster() -> None:
    job = load(RAYJOB)
    container = job["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["template"]["spec"][
        "containers"][0]
    del container["resources"]  # the autoscaler can no longer tell the group's CPUs
    with pytest.raises(ValueError, match="CPU"):
        _derive_autoscaling_config_from_ray_cr(
            {"metadata": {"name": "broken", "namespace": "default"},
             "spec": job["spec"]["rayClusterSpec"]})


def test_rayjob_runtime_env_passes_ray_validation() -> None:
    from ray.runtime_env.runtime_env import _validate_no_local_paths

    env = yaml.safe_load(load(RAYJOB)["spec"]["runtimeEnvYAML"])
    assert set(env) <= RuntimeEnv.known_fields
    validated = RuntimeEnv(**env)
    # The submitter pod has no copy of the project: the working dir must be a remote URI.
    _validate_no_local_paths(validated)
    assert env["env_vars"]["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"
    assert "SYNARAY_LOCAL_LM_API_BASE" not in env["env_vars"]


def test_rayjob_keys_come_from_kubernetes_secrets() -> None:
    spec = load(RAYJOB)["spec"]
    for container in _containers(spec):
        assert {"secretRef": {"name": "synaray-lm-keys"}} in container["envFrom"]
        for var in container.get("env", []):
            if SECRET_NAME.search(var["name"]):
                assert "value" not in var, var["name"]
                assert "secretKeyRef" in var["valueFrom"], var["name"]
    documents = list(yaml.safe_load_all(RAYJOB.read_text()))
    assert not [d for d in documents if d.get("kind") == "Secret"]


def test_rayjob_and_readme_name_an_existing_example() -> None:
    assert (REPO / "examples" / "sports_population_search.yaml").is_file()
    named = set(re.findall(r"examples/[\w./-]+\.(?:yaml|yml|toml)",
                           (CLUSTER / "README.md").read_text() + RAYJOB.read_text()))
    assert "examples/sports_population_search.yaml" in named
    for name in named:
        assert (REPO / name).is_file(), name


# --- secrets ------------------------------------------------------------------------------------
SECRET_NAME = re.compile(
    r"(?i)(api[_-]?key|access[_-]?key(?:[_-]?id)?|secret[_-]?(?:access[_-]?)?key|client[_-]?secret"
    r"|token|password|passwd)$")
KEY_SHAPES = {
    "OpenAI/Anthropic-style key": re.compile(r"\bsk-(?:ant-|proj-)?[A-Za-z0-9_-]{16,}"),
    "AWS access key id": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "Google API key": re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),
    "Hugging Face token": re.compile(r"\bhf_[A-Za-z0-9]{30,}\b"),
    "private key block": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
}
# `NAME: value` or `NAME=value` on one line, where NAME names a key, secret or password.
ASSIGNMENT = re.compile(
    r"(?i)(?P<name>[A-Za-z0-9_]*(?:api[_-]?key|access[_-]?key(?:[_-]?id)?"
    r"|secret[_-]?(?:access[_-]?)?key|client[_-]?secret|token|password|passwd))"
    r"(?![A-Za-z0-9_])\\?[\"']?[ \t]*[:=][ \t]*(?P<value>[^\s,}]+)")


def _is_reference(value: str) -> bool:
    """A value that names where the secret comes from instead of holding it."""
    value = value.lstrip("\\\"'")
    return value == "" or value.startswith(("$", "<", "{", "...")) or value in {"null", "~"}


def find_secrets(text: str) -> list[str]:
    found = [f"{what}: {m.group(0)[:12]}..." for what, pattern in KEY_SHAPES.items()
             for m in pattern.finditer(text)]
    found += [f"literal value for {m.group('name')}" for m in ASSIGNMENT.finditer(text)
              if not _is_reference(m.group("value"))]
    return found


def cluster_files() -> list[Path]:
    return sorted(p for p in CLUSTER.rglob("*") if p.is_file())


def test_cluster_files_exist() -> None:
    names = {str(p.relative_to(CLUSTER)) for p in cluster_files()}
    assert {*LAUNCHERS, "runtime_env.yaml", "kuberay/rayjob.yaml", "README.md"} <= names


@pytest.mark.parametrize("path", cluster_files(), ids=lambda p: str(p.relative_to(CLUSTER)))
def test_no_secrets_in_cluster_files(path: Path) -> None:
    assert find_secrets(path.read_text()) == []


@pytest.mark.parametrize("text", [
    "OPENAI_API_KEY: " + "sk-" + "a1B2" * 6,
    "env_vars: {ANTHROPIC_API_KEY: " + "sk-ant-" + "x" * 30 + "}",
    "aws_access_key_id = " + "AKIA" + "Q" * 16,
    "api_key: hunter2",
    '"OPENAI_API_KEY": "plain-text-value"',
    "password=swordfish",
    "-----BEGIN OPENSSH " + "PRIVATE KEY-----",
])
def test_secret_scan_catches_leaks(text: str) -> None:
    assert find_secrets(text)


@pytest.mark.parametrize("text", [
    'OPENAI_API_KEY="$OPENAI_API_KEY"',
    '{\\"OPENAI_API_KEY\\": \\"$OPENAI_API_KEY\\"}',
    "secretKeyRef:\n  name: synaray-s3\n  key: AWS_ACCESS_KEY_ID",
    "- name: AWS_SECRET_ACCESS_KEY\n  valueFrom:",
    "ssh_private_key: ~/.ssh/id_ed25519",
    "unless Ray's token authentication is turned on (RAY_AUTH_MODE=token)",
])
def test_secret_scan_allows_references(text: str) -> None:
    assert find_secrets(text) == []


# --- README -----------------------------------------------------------------------------------
def test_readme_names_only_files_that_exist() -> None:
    readme = (CLUSTER / "README.md").read_text()
    named = set(re.findall(r"cluster/[\w./-]+\.(?:yaml|md)", readme))
    assert named, "the README names no cluster file"
    for name in named:
        assert (REPO / name).is_file(), name
    for path in cluster_files():
        if path.suffix == ".yaml":
            assert path.name in readme, f"README does not mention {path.name}"
