"""Engines turn a prompt into a stream of text. The GUI sees only the `Engine` interface."""

from app.core.engine.base import (
    Engine,
    EngineCrashed,
    EngineError,
    LoadParams,
    ModelInfo,
    PromptLayout,
    SamplingParams,
    StreamStats,
)

__all__ = [
    "Engine",
    "EngineCrashed",
    "EngineError",
    "LoadParams",
    "ModelInfo",
    "PromptLayout",
    "SamplingParams",
    "StreamStats",
]
