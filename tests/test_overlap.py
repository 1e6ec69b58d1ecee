"""pipelines.data.overlap: an external test set is never the training data in disguise."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from conftest import SMOKE, demo_external_dir, invoke_cli, one_line_error

from pipelines.cli import augment_and_compare
from pipelines.data.load import load_dataset
from pipelines.data.overlap import home_duplicates, without_home_images
from pipelines.errors import UserError


def test_the_home_data_as_its_own_external_test_is_refused():
    home = load_dataset("demo", 32, progress=False)
    assert home_duplicates(home, home).all()
    with pytest.raises(UserError, match=f"all {len(home.labels)} of its images are images of"):
        without_home_images(home, load_dataset("demo", 32, progress=False))


def test_home_images_inside_an_external_set_are_left_out_with_a_note(tmp_path: Path):
    home = load_dataset("demo", 32, progress=False)
    other = load_dataset(str(demo_external_dir(tmp_path / "ext")), 32, progress=False)
    assert not home_duplicates(home, other).any()  # fresh paintings: no image of the home data
    ext = dataclasses.replace(
        other,
        images=np.concatenate([other.images, home.images[[5, 9]]]),
        labels=np.concatenate([other.labels, home.labels[[5, 9]]]),
        image_ids=[*other.image_ids, "copied_a", "copied_b"],
        lesion_ids=[*other.lesion_ids, "la", "lb"],
    )
    rest, note = without_home_images(home, ext)
    assert "2 of its" in note and "copied_a, copied_b" in note and "left out" in note
    assert rest.image_ids == other.image_ids and np.array_equal(rest.images, other.images)
    assert np.array_equal(rest.labels, other.labels) and rest.lesion_ids == other.lesion_ids
    assert without_home_images(home, other) == (other, None)


def test_an_external_test_set_that_is_the_data_folder_is_refused_before_any_work(
    ham_dir: Path, tmp_path: Path
):
    run_dir = tmp_path / "run"
    args = ["--run-dir", str(run_dir), "--data", str(ham_dir), *SMOKE[:4], "--classes", "df"]
    line = one_line_error(
        invoke_cli(augment_and_compare, [*args, "--external-test", str(ham_dir)], ok=False)
    )
    assert f"--external-test {ham_dir}: all" in line and "images of --data" in line
    assert not (run_dir / "jobs").exists()
