"""Settings: where gambarkan keeps its files and which defaults it uses.

Read from environment variables ``GAMBARKAN_*`` once per surface (``Settings.from_env()``);
nothing else in the package reads the environment for these values.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_MODEL = "stable-diffusion-v1-5/stable-diffusion-v1-5"


def _paths(value: str | None) -> list[Path]:
    if not value:
        return []
    return [Path(p).expanduser() for p in value.split(os.pathsep) if p]


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass
class Settings:
    """Paths and defaults for one gambarkan process."""

    home: Path
    output_dir: Path
    config_dir: Path
    cache_dir: Path
    lora_dirs: list[Path] = field(default_factory=list)
    embedding_dirs: list[Path] = field(default_factory=list)
    wildcard_dirs: list[Path] = field(default_factory=list)  # __name__ files (prompt.variations)
    default_model: str = DEFAULT_MODEL
    translator: str = "auto"
    offline: bool = False

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        """Build settings from ``GAMBARKAN_*`` variables, falling back to platform folders."""
        env = dict(os.environ if env is None else env)
        home_var = env.get("GAMBARKAN_HOME")
        if home_var:
            home = Path(home_var).expanduser()
            config_dir = home / "config"
            cache_dir = home / "cache"
        else:
            import platformdirs

            home = Path(platformdirs.user_data_dir("gambarkan", appauthor=False))
            config_dir = Path(platformdirs.user_config_dir("gambarkan", appauthor=False))
            cache_dir = Path(platformdirs.user_cache_dir("gambarkan", appauthor=False))
        output_dir = Path(env.get("GAMBARKAN_OUTPUT_DIR") or home / "outputs").expanduser()
        return cls(
            home=home,
            output_dir=output_dir,
            config_dir=config_dir,
            cache_dir=cache_dir,
            lora_dirs=_paths(env.get("GAMBARKAN_LORA_DIRS")) + [home / "loras"],
            embedding_dirs=_paths(env.get("GAMBARKAN_EMBEDDING_DIRS")) + [home / "embeddings"],
            wildcard_dirs=_paths(env.get("GAMBARKAN_WILDCARDS")) + [home / "wildcards"],
            default_model=env.get("GAMBARKAN_MODEL") or DEFAULT_MODEL,
            translator=env.get("GAMBARKAN_TRANSLATOR") or "auto",
            offline=_truthy(env.get("GAMBARKAN_OFFLINE")) or _truthy(env.get("HF_HUB_OFFLINE")),
        )
