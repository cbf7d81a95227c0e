"""Reading a validated run's report for a model trained on everything: one run or a rotation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_asc.errors import EdgeAscError
from edge_asc.training import reference


def _rotation(kernels: list[int]) -> dict:
    def stat(mean: float) -> dict:
        return {"accuracy": {"mean": mean, "se": 0.01, "per_rotation": [mean] * len(kernels)}}

    return {
        "rotations": [
            {
                "train_splits": ["1", "2"],
                "val_splits": [str(n)],
                "selected_kernel": k,
                "filter_size": [{"kernel": k, "selected": True, "run": n}],
            }
            for n, k in enumerate(kernels, start=1)
        ],
        "models": {
            "fused ensemble FP32": stat(0.63),
            "fused ensemble INT8": stat(0.635),
            "DCASE 2022 baseline": stat(0.58),
            "parent": stat(0.61),
            "member C12-p1": stat(0.62),
        },
        "ensemble_minus_best_member": {"mean": 0.012},
    }


def test_no_path_means_no_reference():
    assert reference.load(None) is None


@pytest.mark.parametrize(("kernels", "chosen", "run"), [([5, 3, 5], 5, 1), ([3, 5], 3, 1)])
def test_a_rotation_gives_the_kernel_most_runs_chose_and_that_runs_table(
    tmp_path: Path, kernels: list[int], chosen: int, run: int
):
    path = tmp_path / "rotation.json"
    path.write_text(json.dumps(_rotation(kernels)))
    ref = reference.load(path)
    assert ref["kind"] == "rotation" and ref["selected_kernel"] == chosen
    assert ref["filter_size"] == [{"kernel": chosen, "selected": True, "run": run}]
    assert ref["int8_accuracy"] == 0.635 and ref["members"] == {"C12-p1": 0.62}
    assert ref["val_splits"] == [str(n) for n in range(1, len(kernels) + 1)]


@pytest.mark.parametrize(
    "text", ["not json", "{}", '{"ensemble": {}}', json.dumps({"rotations": []})]
)
def test_a_file_that_is_not_a_report_is_one_clear_error(tmp_path: Path, text: str):
    path = tmp_path / "report.json"
    path.write_text(text)
    with pytest.raises(EdgeAscError) as err:
        reference.load(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_a_missing_report_is_one_clear_error(tmp_path: Path):
    with pytest.raises(EdgeAscError, match="cannot use reference report"):
        reference.load(tmp_path / "absent.json")
