"""Looking inside trained networks: layer responses (Fig. 7)."""

from reslearn.analysis.layer_responses import LayerResponse, layer_responses, response_layers

__all__ = ["LayerResponse", "layer_responses", "response_layers"]
