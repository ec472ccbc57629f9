"""New working directories for the tests, copied from one made by ``init_workdir`` per start time.

``init_workdir`` runs every migration on a new SQLite database (most of a second); several hundred tests each
want a fresh working directory. The result depends only on the admin's login and the clock's time (the rows
carry that time; the settings file carries two random secrets), so the first one for a given time is made by
``init_workdir`` and later ones are copies of it with secrets of their own: each test still gets its own
directory and database, nothing is shared between tests.
"""

from __future__ import annotations

import shutil
import tomllib
from datetime import datetime
from pathlib import Path

from broadcaster.clock import FrozenClock
from broadcaster.settings import CONFIG_FILENAME
from broadcaster.unsubscribe import new_secret
from broadcaster.workdir import init_workdir

# The settings whose values init_workdir draws at random.
_SECRETS = ("unsubscribe_secret", "subject_key")


class WorkdirTemplates:
    """``make(directory, admin_login=..., clock=...)``: what ``init_workdir(...).close()`` leaves there."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._made: dict[tuple[str, datetime], Path] = {}

    def make(self, directory: Path, *, admin_login: str, clock: FrozenClock) -> None:
        key = (admin_login, clock.now())
        template = self._made.get(key)
        if template is None:
            template = self._root / f"template-{len(self._made)}"
            # A clock of its own: the test's clock stays exactly as init_workdir would have left it.
            template_clock = FrozenClock(clock.now())
            init_workdir(template, admin_login=admin_login, clock=template_clock).close()
            assert template_clock.now() == clock.now(), "init_workdir moved the clock: copies would differ"
            self._made[key] = template
        if directory.exists() and any(directory.iterdir()):
            # Let init_workdir refuse (or not) a directory in use, with its own message.
            init_workdir(directory, admin_login=admin_login, clock=clock).close()
            return
        shutil.copytree(template, directory, dirs_exist_ok=True)
        _new_secrets(directory / CONFIG_FILENAME)


def _new_secrets(config: Path) -> None:
    text = config.read_text(encoding="utf-8")
    security = tomllib.loads(text)["security"]
    for name in _SECRETS:
        old = f'{name} = "{security[name]}"'
        assert text.count(old) == 1, f"{name} not found once in {config}"
        text = text.replace(old, f'{name} = "{new_secret()}"')
    config.write_text(text, encoding="utf-8")
