"""Channel specs by name (like timm's model registry): ``get_spec("default")`` or a path to a TOML file."""

from __future__ import annotations

from pathlib import Path

from ..errors import Loc2VecError
from .spec import ChannelSpec, load_spec_file

_HERE = Path(__file__).parent
_SPECS: dict[str, Path] = {"default": _HERE / "default.toml"}


def register_spec(name: str, path: str | Path) -> None:
    """Make a spec file available by name."""
    _SPECS[name] = Path(path)


def list_specs() -> list[str]:
    return sorted(_SPECS)


def get_spec(name_or_path: str | Path | ChannelSpec | None = None) -> ChannelSpec:
    """The spec registered under a name, or loaded from a TOML file; ``None`` gives the default."""
    if isinstance(name_or_path, ChannelSpec):
        return name_or_path
    key = str(name_or_path or "default")
    if key in _SPECS:
        return load_spec_file(_SPECS[key])
    if key.endswith(".toml") or Path(key).is_file():
        return load_spec_file(key)
    raise Loc2VecError(f"unknown channel spec {key!r}",
                       f"use a registered name ({', '.join(list_specs())}) or the path of a TOML file")
