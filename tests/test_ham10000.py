"""Integration test on the real HAM10000 copy (../shared/data/HAM10000, or $RAREGAN_HAM10000)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import HAM10000

from pipelines.data.load import load_dataset
from pipelines.data.splits import SPLITS, load_or_make_split

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not (HAM10000 / "HAM10000_metadata.csv").is_file(),
        reason=f"real HAM10000 not found at {HAM10000} (set RAREGAN_HAM10000 to its folder)",
    ),
]


@pytest.fixture(scope="module")
def ham(tmp_path_factory):
    return load_dataset(HAM10000, 32, cache_dir=tmp_path_factory.mktemp("cache"), progress=False)


def test_all_images_classes_and_lesions(ham):
    assert ham.format == "ham10000" and ham.images.shape == (10015, 32, 32, 3)
    assert ham.class_counts() == {
        "akiec": 327,
        "bcc": 514,
        "bkl": 1099,
        "df": 115,
        "mel": 1113,
        "nv": 6705,
        "vasc": 142,
    }
    assert len(set(ham.lesion_ids)) == 7470
    assert ham.images.mean() > 50  # decoded pixels, not zeros


def test_lesion_level_split_has_no_leak(ham, tmp_path: Path):
    split = load_or_make_split(ham, tmp_path / "run")
    lesions = np.array(ham.lesion_ids)
    parts = [set(lesions[split[s]]) for s in SPLITS]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert sum(len(split[s]) for s in SPLITS) == 10015
    df = ham.class_index("df")
    df_lesions = [len(set(lesions[split[s]][ham.labels[split[s]] == df])) for s in SPLITS]
    assert df_lesions == [51, 11, 11]  # 73 df lesions, 70/15/15
    # the byte-identical pair of nv images belongs to one lesion, so it stays on one side
    ids = np.array(ham.image_ids)
    side = {i: s for s in SPLITS for i in ids[split[s]]}
    assert side["ISIC_0024366"] == side["ISIC_0029861"]
