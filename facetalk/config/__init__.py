"""Validated configuration: a persona file and a pipeline file.

Both are YAML documents whose ``kind`` says which schema applies
(:mod:`.persona`, :mod:`.pipeline`); :mod:`.loading` reads them and reports
any problem as a :class:`ConfigError` naming the file, the field path and
what was expected. Relative paths inside a file (the portrait, a custom
voice) are resolved against the folder of that file, so configs can be
moved as a unit.
"""

from .loading import ConfigError, load_config, load_persona, load_pipeline
from .persona import Expression, PersonaConfig
from .pipeline import (
    DEV_API_KEY,
    DEV_API_SECRET,
    DEV_URL,
    AvatarConfig,
    CustomLLMConfig,
    EmbeddedLLMConfig,
    LiveKitConfig,
    LLMConfig,
    OpenAILLMConfig,
    PipelineConfig,
    STTConfig,
    TTSConfig,
    TurnConfig,
    VADConfig,
    WorkerConfig,
)

__all__ = [
    "DEV_API_KEY",
    "DEV_API_SECRET",
    "DEV_URL",
    "AvatarConfig",
    "ConfigError",
    "CustomLLMConfig",
    "EmbeddedLLMConfig",
    "Expression",
    "LLMConfig",
    "LiveKitConfig",
    "OpenAILLMConfig",
    "PersonaConfig",
    "PipelineConfig",
    "STTConfig",
    "TTSConfig",
    "TurnConfig",
    "VADConfig",
    "WorkerConfig",
    "load_config",
    "load_persona",
    "load_pipeline",
]
