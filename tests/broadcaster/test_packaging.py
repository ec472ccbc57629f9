"""The wheel: built from the repository, it holds exactly our three packages and the default files, and a
fresh virtual environment with only the wheel installed can ``init`` a working directory and upgrade it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from broadcaster.db.migrate import MIGRATIONS, head_revision

REPO = Path(__file__).resolve().parents[2]
PACKAGES = {"broadcaster", "channels", "consent"}

pytestmark = pytest.mark.slow

MIGRATION_VERSIONS = MIGRATIONS / "versions"


def _clean_env() -> dict[str, str]:
    """The developer's environment minus anything that would let the repository or its settings leak in."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("BROADCASTER_") and key not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
    }


def _run(args: list[str | Path], *, cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(  # noqa: S603  build and install commands built by the tests
        [str(a) for a in args],
        cwd=cwd,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return result


def _repo_files(folder: str) -> set[str]:
    root = REPO / folder
    return {
        path.relative_to(root).as_posix()
        for path in root.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--wheel", "--outdir", out, REPO], cwd=REPO, timeout=180)
    wheels = list(out.glob("broadcaster_engine-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_repository_imports_resolve_to_the_repository() -> None:
    import broadcaster
    import channels
    import consent

    for module in (broadcaster, channels, consent):
        assert module.__file__ is not None
        assert Path(module.__file__).resolve().parent == REPO / module.__name__


def test_wheel_holds_the_three_packages_and_the_defaults(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    top = {name.split("/", 1)[0] for name in names}
    assert top - PACKAGES == {f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.dist-info"}
    assert top >= PACKAGES
    assert not any(name.startswith("tests/") or "/tests/" in name for name in names)
    assert not any("__pycache__" in name or name.endswith(".pyc") for name in names)
    assert "broadcaster/db/migrations/env.py" in names
    versions = sorted(path.name for path in MIGRATION_VERSIONS.glob("0*.py"))
    assert versions
    assert all(f"broadcaster/db/migrations/versions/{v}" in names for v in versions)
    for folder in ("templates", "campaigns"):
        prefix = f"broadcaster/_defaults/{folder}/"
        shipped = {name[len(prefix) :] for name in names if name.startswith(prefix)}
        assert shipped == _repo_files(folder), folder
    assert "broadcaster/_defaults/campaigns/examples/thong-bao-dich-vu-cong.yaml" in names


def test_fresh_venv_with_the_wheel_can_init_and_upgrade(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", venv], cwd=tmp_path, timeout=120)
    python, broadcaster = venv / "bin" / "python", venv / "bin" / "broadcaster"
    _run([python, "-m", "pip", "install", "--quiet", wheel], cwd=tmp_path, timeout=600)

    where = _run(
        [
            python,
            "-c",
            "import broadcaster, channels, consent; print(broadcaster.__file__, consent.__file__)",
        ],
        cwd=tmp_path,
        timeout=60,
    )
    assert all(str(venv) in path and str(REPO) not in path for path in where.stdout.split())

    _run([broadcaster, "init", "lam-viec", "--admin", "quan_tri"], cwd=tmp_path, timeout=120)
    workdir = tmp_path / "lam-viec"
    assert (workdir / "broadcaster.toml").is_file()
    assert (workdir / "templates" / "README.md").is_file()
    assert (workdir / "campaigns" / "examples" / "thong-bao-dich-vu-cong.yaml").is_file()

    upgraded = _run([broadcaster, "db", "upgrade"], cwd=workdir, timeout=120)
    assert "up to date" in upgraded.stdout
    current = _run([broadcaster, "db", "current", "--json"], cwd=workdir, timeout=60)
    assert json.loads(current.stdout) == {"revision": head_revision()}
