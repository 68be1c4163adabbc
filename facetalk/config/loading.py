"""Reading a config file: YAML, the schema its ``kind`` names, and errors a person can act on.

Any problem is reported as a :class:`ConfigError` naming the file, the field
path and what was expected::

    configs/persona.yaml: invalid persona config
      expression.smile: Input should be less than or equal to 1 (got 1.5)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import ValidationError

from ..errors import FaceTalkError
from .persona import PersonaConfig
from .pipeline import PipelineConfig

__all__ = ["ConfigError", "load_config", "load_persona", "load_pipeline"]


class ConfigError(FaceTalkError):
    """A config file that cannot be read or does not match its schema."""


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found", hint="check the path")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        where = ""
        if (mark := getattr(e, "problem_mark", None)) is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        raise ConfigError(
            f"{path}: not valid YAML{where}: {getattr(e, 'problem', e)}",
            hint="fix the YAML syntax (indentation, colons, quotes)",
        ) from e
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: expected a mapping of fields at the top level, got {type(data).__name__}",
            hint="start the file with 'kind: persona' or 'kind: pipeline'",
        )
    return data


def _field_path(loc: tuple[int | str, ...], data: Any) -> str:
    """Dotted field path, without the tags pydantic adds for tagged unions.

    A tag (``openai`` in ``llm.openai.model``) is a part of ``loc`` that is not
    a key of the input at that level; the last part may legitimately be absent
    (a missing field), so it is always kept.
    """
    parts: list[str] = []
    for i, part in enumerate(loc):
        is_last = i == len(loc) - 1
        if isinstance(data, dict) and part not in data and not is_last:
            continue  # a union tag, not a field
        parts.append(str(part))
        data = data[part] if isinstance(data, (dict, list)) and not is_last else None
    return ".".join(parts) or "(top level)"


def _format_validation_error(path: Path, data: dict[str, Any], error: ValidationError) -> ConfigError:
    lines = [f"{path}: invalid {data['kind']} config"]
    for item in error.errors(include_url=False):
        where = _field_path(item["loc"], data)
        got = "" if item["type"] == "missing" else f" (got {item.get('input')!r})"
        message = item["msg"].removeprefix("Value error, ")
        lines.append(f"  {where}: {message}{got}")
    return ConfigError("\n".join(lines), hint=f"edit {path} and run 'facetalk config check {path}'")


_MODELS: dict[str, type[PersonaConfig] | type[PipelineConfig]] = {
    "persona": PersonaConfig,
    "pipeline": PipelineConfig,
}


def load_config(path: str | Path) -> PersonaConfig | PipelineConfig:
    """Load and validate a persona or pipeline file, chosen by its ``kind``."""
    path = Path(path)
    data = _read_yaml(path)
    model = _MODELS.get(data.get("kind"))  # type: ignore[arg-type]
    if model is None:
        raise ConfigError(
            f"{path}: field 'kind' is {data.get('kind')!r}, expected 'persona' or 'pipeline'",
            hint="add 'kind: persona' or 'kind: pipeline' at the top of the file",
        )
    try:
        return model.model_validate(data, context={"base_dir": path.parent})
    except ValidationError as e:
        raise _format_validation_error(path, data, e) from None


def load_persona(path: str | Path) -> PersonaConfig:
    """Load a persona file; raises :class:`ConfigError` if it is anything else."""
    return _load_kind(path, PersonaConfig)


def load_pipeline(path: str | Path) -> PipelineConfig:
    """Load a pipeline file; raises :class:`ConfigError` if it is anything else."""
    return _load_kind(path, PipelineConfig)


_Kind = TypeVar("_Kind", PersonaConfig, PipelineConfig)


def _load_kind(path: str | Path, model: type[_Kind]) -> _Kind:
    config = load_config(path)
    if not isinstance(config, model):
        expected = model.model_fields["kind"].default
        raise ConfigError(
            f"{path}: this is a {config.kind} config, expected a {expected} config",
            hint=f"pass a file that starts with 'kind: {expected}'",
        )
    return config
