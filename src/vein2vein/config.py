"""Settings, built once (in bootstrap) from ``V2V_*`` environment variables and defaults."""

from __future__ import annotations

from pathlib import Path

from platformdirs import user_data_dir
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "default_database_url"]


def default_database_url() -> str:
    """The embedded default: a SQLite file in the user's data directory."""
    return f"sqlite:///{Path(user_data_dir('vein2vein')) / 'vein2vein.sqlite3'}"


class Settings(BaseSettings):
    """Read from ``V2V_*`` environment variables: ``V2V_DATABASE_URL``, ``V2V_HOST``,
    ``V2V_PORT``, ``V2V_TEST_POSTGRES_URL``, and the security settings below
    (``V2V_PASSWORD_MAX_AGE_DAYS``, ``V2V_LOCKOUT_AFTER``, ``V2V_SESSION_IDLE_MINUTES``, …)."""

    model_config = SettingsConfigDict(env_prefix="V2V_", extra="ignore")

    database_url: str = Field(default_factory=default_database_url)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    test_postgres_url: str | None = None
    token: str | None = None  # V2V_TOKEN: an API token for the CLI in scripts
    # Sign-in and passwords (issue 4); see README "Security model".
    password_min_length: int = Field(default=12, ge=8, le=128)
    password_max_age_days: int = Field(default=90, ge=1, le=3650)
    lockout_after: int = Field(default=5, ge=1, le=100)
    session_idle_minutes: int = Field(default=15, ge=1, le=24 * 60)
    session_hours: int = Field(default=12, ge=1, le=24 * 7)
    token_days: int = Field(default=30, ge=1, le=365)
    cli_token_hours: int = Field(default=12, ge=1, le=24 * 30)
    # argon2id cost; lower only for tests (a hash keeps its own cost, so it still verifies).
    argon2_time_cost: int = Field(default=3, ge=1, le=20)
    argon2_memory_kib: int = Field(default=65_536, ge=1024, le=4 * 1024 * 1024)

    @field_validator("database_url")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError(
                f"{value!r}: expected sqlite:///PATH or postgresql+psycopg://USER@HOST/DB"
            )
        return value
