"""One place that reads the environment; every settings module imports `env` from here."""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
# A local .env is convenient for development; real deployments set real variables.
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)
