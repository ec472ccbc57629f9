"""docker/ kept right without Docker: every service's ``broadcaster …`` command (and health check) parses in the
CLI, every queue the engine uses has a consuming service, one gateway per SMPP account and one beat, every service
has a health check and a restart policy, the image does not run as root, and the files it mounts exist."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from broadcaster.cli import app
from broadcaster.runtime import INBOUND_WORKER, WorkerSpec, worker_specs
from broadcaster.settings import Settings, load_settings
from channels.registry import load_adapter_class

DOCKER = Path(__file__).resolve().parent.parent / "docker"
COMPOSE = DOCKER / "compose.yaml"


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    return dict(yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["services"])


@pytest.fixture(scope="module")
def settings() -> Settings:
    """The containers' settings file, as the engine reads it (a bad key fails here, naming it)."""
    return load_settings(DOCKER / "settings.toml")


def engine_services(services: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """The services running the Broadcaster image, with their ``broadcaster`` arguments."""
    return {
        name: [str(arg) for arg in service["command"]]
        for name, service in services.items()
        if service.get("image") == "broadcaster:latest"
    }


def parse(args: list[str]) -> Any:
    """Parse ``broadcaster ARGS`` as the CLI would (unknown commands and options fail) and return the click
    context of the command. (typer may vendor click: its classes are used through the objects, never
    imported.)"""
    command: Any = typer.main.get_command(app)
    path: list[str] = []
    rest = list(args)
    while hasattr(command, "get_command") and rest and not rest[0].startswith("-"):
        name = rest[0]
        sub = command.get_command(command.context_class(command), name)
        if sub is None:
            raise AssertionError(f"broadcaster {' '.join(args)}: no command {name!r}")
        path.append(name)
        command, rest = sub, rest[1:]
    return command.make_context(" ".join(["broadcaster", *path]), rest, resilient_parsing=False)


def test_every_engine_command_and_health_check_exists_in_the_cli(services: dict[str, dict[str, Any]]) -> None:
    commands = engine_services(services)
    assert commands, "no service runs the broadcaster image"
    for name, args in commands.items():
        parse(args)  # raises on an unknown command or option, naming it
        test = services[name]["healthcheck"]["test"]
        if test[:2] == ["CMD", "broadcaster"]:
            parse(test[2:])


def test_each_service_has_a_health_check_and_a_restart_policy(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), f"{name}: no healthcheck"
        assert service.get("restart") in {"always", "unless-stopped", "on-failure"}, (
            f"{name}: no restart policy"
        )


def consumed_queues(args: list[str], specs: list[WorkerSpec]) -> tuple[str, ...]:
    """The queues ``broadcaster worker …`` consumes, as engine_processes.worker picks them."""
    params = parse(args).params
    if params["gateway"]:
        (spec,) = (s for s in specs if params["gateway"] in s.gateways)
        return spec.queues
    if params["inbound"]:
        (spec,) = (s for s in specs if s.name == INBOUND_WORKER)
        return spec.queues
    if params["queues"]:
        return tuple(q.strip() for q in params["queues"].split(",") if q.strip())
    return specs[0].queues


def test_every_queue_of_the_engine_has_a_consuming_service(
    services: dict[str, dict[str, Any]], settings: Settings
) -> None:
    specs = worker_specs(settings)  # the queues the engine sends to (tests/…/test_inbound_queue.py)
    needed = {queue for spec in specs for queue in spec.queues}
    consumed: dict[str, set[str]] = {}
    for name, args in engine_services(services).items():
        if args[0] == "worker":
            for queue in consumed_queues(args, specs):
                consumed.setdefault(queue, set()).add(name)
    assert needed - consumed.keys() == set(), "queues no service consumes"
    assert consumed.keys() - needed == set(), "services consume queues the engine never sends to"


def test_one_gateway_per_smpp_account_and_one_beat(
    services: dict[str, dict[str, Any]], settings: Settings
) -> None:
    accounts = sorted(
        name for name, p in settings.providers.items() if load_adapter_class(p.type).capabilities.gateway
    )
    commands = engine_services(services)
    gateways = sorted(args[args.index("--gateway") + 1] for args in commands.values() if "--gateway" in args)
    assert gateways == accounts
    assert [name for name, args in commands.items() if args[0] == "beat"] == ["beat"]
    for name, args in commands.items():
        if "--gateway" in args or args[0] == "beat":
            assert "deploy" not in services[name], f"{name} must not be replicated"


def test_the_image_does_not_run_as_root() -> None:
    users = re.findall(r"^USER\s+(\S+)", (DOCKER / "Dockerfile").read_text(encoding="utf-8"), re.MULTILINE)
    assert users, "the Dockerfile sets no USER"
    assert users[-1].split(":")[0] not in {"root", "0"}


def test_the_files_compose_mounts_exist(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":")[0]
            if source.startswith("./"):
                assert (DOCKER / source).is_file(), f"{name}: {source} is missing"
    prometheus = yaml.safe_load((DOCKER / "prometheus" / "prometheus.yml").read_text(encoding="utf-8"))
    targets = [t for job in prometheus["scrape_configs"] for c in job["static_configs"] for t in c["targets"]]
    assert "metrics:9464" in targets
    assert "metrics" in services
