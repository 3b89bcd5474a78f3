"""Networks built from affgraph's layers (one model a file), as PyG keeps
``torch_geometric.nn.models``."""
from __future__ import annotations

from affgraph.nn.models.affinity_attention_net import AffinityAttentionNet
from affgraph.nn.models.affinity_hop_net import AffinityHopNet
from affgraph.nn.models.consistency import GRANDLoss, consistency_loss
from affgraph.nn.models.drop_node_diffusion import DropNodeDiffusion
from affgraph.nn.models.grand import GRAND
from affgraph.nn.models.grand_attention import GRANDAttention
from affgraph.nn.models.mlp_diffusion import MLPDiffusion

__all__ = ["AffinityAttentionNet", "AffinityHopNet", "DropNodeDiffusion", "MLPDiffusion",
           "consistency_loss", "GRANDLoss", "GRAND", "GRANDAttention"]
