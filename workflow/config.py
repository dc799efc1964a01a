"""Settings: one pydantic-settings class, read from ``BREACHFLOW_*`` environment variables.

Every deadline period and every list the process depends on lives here, so nothing in the
code carries a literal of its own. Tests build their own ``Settings`` and pass it in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_SYSTEMS = ("parent_portal", "plaza", "cms", "website")


class Settings(BaseSettings):
    """Configuration of one breachflow process."""

    model_config = SettingsConfigDict(env_prefix="BREACHFLOW_", extra="ignore")

    environment: Literal["development", "production"] = "development"
    data_dir: Path = Path("var")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: a SQLite file in data_dir"
    )
    master_keys: SecretStr | None = Field(
        default=None,
        description="Comma-separated Fernet keys, newest first; default: the key file",
    )
    key_file: Path | None = Field(default=None, description="default: data_dir/master.key")

    school_notice_hours: float = Field(default=24, gt=0, description="processor → school")
    ap_notice_hours: float = Field(default=72, gt=0, description="discovery → AP (GDPR 33(1))")
    school_ap_notice_hours: float = Field(
        default=72, gt=0, description="school's own AP clock, from the processor's first notice"
    )
    due_soon_hours: float = Field(default=12, gt=0)
    affected_systems: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_SYSTEMS)
    )

    @field_validator("affected_systems", mode="before")
    @classmethod
    def _split_systems(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("affected_systems")
    @classmethod
    def _systems_not_empty(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one system must be configured")
        return value

    @model_validator(mode="after")
    def _safe_outside_development(self) -> Settings:
        if self.environment == "production" and self.master_keys is None:
            raise ValueError(
                "BREACHFLOW_MASTER_KEYS is required in production: "
                "keep the master key out of the data directory"
            )
        return self

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to ``data_dir/breachflow.db``."""
        return self.database_url or f"sqlite:///{self.data_dir / 'breachflow.db'}"

    @property
    def resolved_key_file(self) -> Path:
        """Where the embedded default keeps its master keys."""
        return self.key_file or self.data_dir / "master.key"
