"""Settings, built once (in bootstrap) from ``V2V_*`` environment variables and defaults."""

from __future__ import annotations

import getpass
from pathlib import Path

from platformdirs import user_data_dir
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "default_database_url"]


def default_database_url() -> str:
    """The embedded default: a SQLite file in the user's data directory."""
    return f"sqlite:///{Path(user_data_dir('vein2vein')) / 'vein2vein.sqlite3'}"


def _default_actor() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "operator"


class Settings(BaseSettings):
    """Read from ``V2V_DATABASE_URL``, ``V2V_ACTOR``, ``V2V_HOST``, ``V2V_PORT`` and
    ``V2V_TEST_POSTGRES_URL``."""

    model_config = SettingsConfigDict(env_prefix="V2V_", extra="ignore")

    database_url: str = Field(default_factory=default_database_url)
    actor: str = Field(default_factory=_default_actor)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    test_postgres_url: str | None = None

    @field_validator("database_url")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError(
                f"{value!r}: expected sqlite:///PATH or postgresql+psycopg://USER@HOST/DB"
            )
        return value
