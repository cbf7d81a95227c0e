"""A real training run to benchmark: the pipeline's quick mode on the TUT scene clips."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def quick_run(tau22_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder (model.onnx, model-fp32.onnx, report.json, torch/), trained once (~25 s)."""
    from edge_asc.training.pipeline import PipelineOptions, run_pipeline

    out = tmp_path_factory.mktemp("bench-run")
    run_pipeline(PipelineOptions(data=tau22_root, out=out / "run", quick=True, cache=out / "cache"))
    return out / "run"
