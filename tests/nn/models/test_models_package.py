"""The public names of affgraph.nn.models."""
import affgraph
import affgraph.nn.models as models
from affgraph.nn.models import (  # noqa: F401
    GRAND, AffinityAttentionNet, GRANDAttention, AffinityHopNet, DropNodeDiffusion, GRANDLoss, MLPDiffusion,
    consistency_loss,
)


def test_public_names():
    assert sorted(models.__all__) == sorted(["AffinityAttentionNet", "AffinityHopNet",
                                             "DropNodeDiffusion", "MLPDiffusion",
                                             "consistency_loss", "GRANDLoss", "GRAND",
                                             "GRANDAttention"])
    assert all(hasattr(models, name) for name in models.__all__)
    assert affgraph.nn.models is models and "models" in affgraph.nn.__all__
