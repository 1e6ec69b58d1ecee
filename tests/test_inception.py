"""The Inception feature space's wiring, with a randomly initialised network of the real shape
(the real weights come from a hub at run time, which is not reachable in CI)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gan.metrics.features import (
    INCEPTION_WEIGHTS_FILE,
    extract_features,
    find_inception_weights,
    inception_space,
    inception_weights_help,
)
from pipelines.errors import UserError
from pipelines.steps.feature_space import FeatureRequest, load_feature_space


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory) -> Path:
    import torch_fidelity.feature_extractor_inceptionv3 as tf_inception

    with pytest.MonkeyPatch.context() as mp:  # build the network without its download
        mp.setattr(tf_inception, "load_state_dict_from_url", lambda *a, **k: {})
        mp.setattr(tf_inception.FeatureExtractorInceptionV3, "load_state_dict", lambda s, d: None)
        net = tf_inception.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    path = tmp_path_factory.mktemp("inception") / INCEPTION_WEIGHTS_FILE
    torch.save(net.state_dict(), path)
    return path


def test_inception_space_extracts_2048d_features_from_a_local_file(random_weights: Path):
    space = inception_space(random_weights)
    assert (space.name, space.dim) == ("inception", 2048)
    images = torch.randint(0, 256, (3, 3, 64, 64), dtype=torch.uint8)
    feats = extract_features(space, images, batch_size=2)
    assert feats.shape == (3, 2048) and feats.dtype == torch.float64
    assert torch.isfinite(feats).all() and feats.std() > 0


def test_weights_are_found_by_option_then_environment(random_weights: Path, monkeypatch):
    monkeypatch.delenv("RAREGAN_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: "/nonexistent")
    assert find_inception_weights(None) is None
    assert find_inception_weights(random_weights) == random_weights
    monkeypatch.setenv("RAREGAN_INCEPTION_WEIGHTS", str(random_weights))
    assert find_inception_weights(None) == random_weights


def test_missing_weights_say_which_file_to_put_where(monkeypatch):
    monkeypatch.delenv("RAREGAN_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: "/nonexistent/hub")
    with pytest.raises(UserError) as err:
        load_feature_space(FeatureRequest("inception"), None, None, Path("."), torch.device("cpu"))
    msg = err.value.message
    assert INCEPTION_WEIGHTS_FILE in msg and "/nonexistent/hub/checkpoints" in msg
    assert "--inception-weights" in msg and msg == inception_weights_help()
