"""Architecture graphs built from the real modules of every supported architecture."""

import pytest

from explorer.models.structure import architecture_graph
from explorer.plots.architecture import architecture_figure
from explorer.registry import ARCHITECTURES
from tiny_models import ARCHITECTURE_NAMES, tiny_model


@pytest.mark.parametrize("name", ARCHITECTURE_NAMES)
def test_graph_accounts_for_every_parameter(name):
    model = tiny_model(name)
    arch = ARCHITECTURES[name]
    graph = architecture_graph(model, arch.family)
    assert sum(d["params"] for _n, d in graph.nodes(data=True)) == sum(p.numel() for p in model.parameters())
    kinds = [d["kind"] for _n, d in graph.nodes(data=True)]
    assert kinds.count("embeddings") == 1 and kinds.count("head") == 1
    cross_edges = [e for e in graph.edges(data=True) if e[2].get("cross")]
    if getattr(model.config, "is_encoder_decoder", False):
        assert kinds.count("cross-attention") == len(cross_edges) == 2
    else:
        assert not cross_edges
    if arch.family == "moe":
        # the dense FFN is replaced by a router feeding the experts
        assert kinds.count("router") == kinds.count("experts") >= 2
        for node, d in graph.nodes(data=True):
            if d["kind"] == "router":
                assert any(graph.nodes[t]["kind"] == "experts" for t in graph.successors(node))
    elif name != "albert":
        assert kinds.count("attention") == kinds.count("feed-forward")
    figure = architecture_figure(graph, name)
    assert len(figure.data) >= 3


def test_albert_shows_its_shared_block():
    graph = architecture_graph(tiny_model("albert"), "encoder")
    labels = [d["label"] for _n, d in graph.nodes(data=True)]
    assert any("shared by all" in label for label in labels)


def test_gallery_graph_of_mixtral_from_its_configuration():
    from explorer.models.accounting import gallery_graph

    graph = gallery_graph("mixtral-8x7b")
    kinds = [d["kind"] for _n, d in graph.nodes(data=True)]
    assert kinds.count("router") == kinds.count("experts") == 32
    assert sum(d["params"] for _n, d in graph.nodes(data=True)) == 46_702_792_704
