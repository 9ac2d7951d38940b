"""Settings: the secret key, which reading settings never writes, and the typed per-app
settings."""

import os
import stat
import subprocess
import sys

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from friendships.conf import friendships_settings
from tests.support import manage

PRINT_KEY = "from django.conf import settings; print(settings.SECRET_KEY)"


def make_key(env: dict[str, str]) -> None:
    """`python -m presence_project.secret_key`, as scripts/bootstrap.sh runs it."""
    subprocess.run(
        [sys.executable, "-m", "presence_project.secret_key"],
        cwd=settings.BASE_DIR,
        env={**os.environ, **env},
        check=True,
        timeout=30,
    )


def test_without_a_secret_key_commands_refuse_to_run_and_write_nothing(tmp_path):
    key_file = tmp_path / "secret-key"
    result = manage("check", env={"SECRET_KEY": "", "SECRET_KEY_FILE": str(key_file)})
    assert result.returncode != 0
    assert "no secret key: set SECRET_KEY" in result.stderr, result.stderr
    assert "python -m presence_project.secret_key" in result.stderr
    assert not key_file.exists()


def test_the_local_key_is_made_once_by_its_command_and_read_by_every_process(tmp_path):
    key_file = tmp_path / "secret-key"
    env = {"SECRET_KEY": "", "SECRET_KEY_FILE": str(key_file)}
    make_key(env)
    key = key_file.read_text().strip()
    assert len(key) >= 50
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    make_key(env)
    assert key_file.read_text().strip() == key
    shell = manage("shell", "-v", "0", "-c", PRINT_KEY, env=env)
    assert shell.returncode == 0, shell.stderr
    assert shell.stdout.strip() == key


def test_a_key_from_the_environment_needs_no_file_and_makes_none(tmp_path):
    key_file = tmp_path / "secret-key"
    env = {"SECRET_KEY": "from-the-environment", "SECRET_KEY_FILE": str(key_file)}
    make_key(env)
    shell = manage("shell", "-v", "0", "-c", PRINT_KEY, env=env)
    assert shell.stdout.strip() == "from-the-environment", shell.stderr
    assert not key_file.exists()


def test_an_app_setting_with_an_unknown_or_missing_name_is_refused_by_name():
    with (
        override_settings(FRIENDSHIPS={"ACTIONS_PER_HOUR": 5, "ACTIONS_PER_MINUTE": 5}),
        pytest.raises(
            ImproperlyConfigured,
            match="unknown ACTIONS_PER_HOUR; missing ACTIONS_PER_PAIR_PER_MINUTE",
        ),
    ):
        friendships_settings()
