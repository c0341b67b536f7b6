"""Importing the settings creates nothing on disk; starting Django creates the folders the
app writes to (config.apps)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from django.conf import settings


def _copy_of_the_project(tmp_path: Path) -> Path:
    root = Path(settings.BASE_DIR)
    copy = tmp_path / "project"
    copy.mkdir()
    for name in ("config", "credits", "usage", "notifications", "templates", "locale"):
        shutil.copytree(root / name, copy / name,
                        ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def _python(copy: Path, code: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")}
    env.update(PYTHONPATH=str(copy), DEBUG="true")
    return subprocess.run([sys.executable, "-c", code], cwd=copy, env=env,
                          capture_output=True, text=True, timeout=120)


def test_importing_the_settings_creates_no_folder_and_starting_django_does(tmp_path):
    copy = _copy_of_the_project(tmp_path)
    done = _python(copy, "import config.settings")
    assert done.returncode == 0, done.stderr
    assert not (copy / "var").exists()

    done = _python(copy, "import os, django; "
                         "os.environ['DJANGO_SETTINGS_MODULE'] = 'config.settings'; "
                         "django.setup()")
    assert done.returncode == 0, done.stderr
    for folder in ("var", "var/static", "var/broker/queue", "var/broker/processed",
                   "var/broker/control"):
        assert (copy / folder).is_dir(), folder
