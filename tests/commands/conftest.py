"""Fixtures of the command tests: the tiny checkpoints the pipeline tests build."""

from tests.pipelines.conftest import tiny_checkpoints  # noqa: F401
