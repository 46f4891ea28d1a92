"""The environment secret store (the default): environment variables, falling back to a `.env` file."""

from __future__ import annotations

import os
import re
from pathlib import Path

from dotenv import dotenv_values

from secret_store.base import MissingSecretError

ENV_PREFIX = "DATAPLATFORM_SECRET_"


class EnvSecretStore:
    """Secrets from environment variables, falling back to a `.env` file.

    The key `tst01/api_token` is read from `DATAPLATFORM_SECRET_TST01_API_TOKEN`.
    """

    def __init__(self, *, env_file: Path | None = None) -> None:
        path = env_file or Path(os.environ.get("DATAPLATFORM_ENV_FILE", ".env"))
        self._file_values = {k: v for k, v in dotenv_values(path).items() if v is not None} if path.exists() else {}

    @staticmethod
    def variable(key: str) -> str:
        return ENV_PREFIX + re.sub(r"[^A-Z0-9]+", "_", key.upper()).strip("_")

    def key_problem(self, key: str) -> str | None:
        if self.variable(key) == ENV_PREFIX:
            return f"secret key {key!r} names no environment variable; use letters or digits in it"
        return None

    def has(self, key: str) -> bool:
        name = self.variable(key)
        return name in os.environ or name in self._file_values

    def get(self, key: str) -> str:
        name = self.variable(key)
        if name in os.environ:
            return os.environ[name]
        if name in self._file_values:
            return self._file_values[name]
        raise MissingSecretError(f"secret {key!r} is not set: {self.describe(key)}")

    def describe(self, key: str) -> str:
        return f"set the environment variable {self.variable(key)} (or put it in .env)"
