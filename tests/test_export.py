"""The export for the browser: round trips within the int8 step (exact for float16), the model on the
loaded weights, the course model's file sizes, clear errors on bad files, the fixtures, and the
JavaScript engine's own checks in headless Chromium."""

import json
import struct
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from llmscratch import GPT, GPTConfig
from llmscratch.course import load_course_model
from llmscratch.export import (
    MAGIC,
    ExportFileError,
    export_fixtures,
    export_model,
    load_export,
    load_export_model,
)
from llmscratch.quantization import QUANT_SCHEMES, dequantize_tensor, quantize_tensor
from llmscratch.quantized_model import quantize
from llmscratch.sampling import generate

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = GPTConfig(vocab_size=40, context_length=16, d_model=32, n_layers=2, n_heads=4, position="rope")


def tiny_model(**changes) -> GPT:
    torch.manual_seed(0)
    model = GPT(replace(TINY, **changes)).eval()
    with torch.no_grad():  # biases and norms away from their 0 and 1, so that the round trip tests them too
        for p in model.parameters():
            if p.ndim == 1:
                p.add_(torch.randn_like(p) * 0.1)
    return model


@pytest.fixture(scope="module")
def course():
    return load_course_model(verify=False)


def test_int8_round_trip_is_the_packages_per_channel_quantization(tmp_path):
    """Every matrix comes back as `dequantize_tensor(quantize_tensor(w, int8-channel))`, so within half a step of w."""
    model = tiny_model()
    export_model(model, tmp_path / "m.bin", "int8")
    config, state = load_export(tmp_path / "m.bin")
    assert config == model.config
    for name, w in model.state_dict().items():
        if w.ndim == 2:
            qt = quantize_tensor(w, QUANT_SCHEMES["int8-channel"])
            assert torch.equal(state[name], dequantize_tensor(qt)), name
            assert bool(((state[name] - w).abs() <= qt.scale.float() / 2 * (1 + 1e-6)).all()), name
        else:
            assert torch.equal(state[name], w), name  # vectors are stored in float32


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_float_round_trips_are_exact_to_their_precision(tmp_path, dtype):
    model = tiny_model()
    export_model(model, tmp_path / "m.bin", dtype)
    _, state = load_export(tmp_path / "m.bin")
    for name, w in model.state_dict().items():
        want = w.half().float() if dtype == "float16" and w.ndim == 2 else w
        assert state[name].dtype == torch.float32 and torch.equal(state[name], want), name


def test_a_tied_output_layer_is_stored_once_and_comes_back_tied(tmp_path):
    model = tiny_model()
    export_model(model, tmp_path / "m.bin", "float16")
    header = json.loads(_header(tmp_path / "m.bin"))
    names = [t["name"] for t in header["tensors"]]
    assert "lm_head.weight" not in names and "token_embedding.weight" in names
    loaded = load_export_model(tmp_path / "m.bin")
    assert loaded.lm_head.weight is loaded.token_embedding.weight


def _header(path: Path) -> str:
    raw = path.read_bytes()
    (n,) = struct.unpack_from("<I", raw, len(MAGIC))
    assert (len(MAGIC) + 4 + n) % 4 == 0  # the data starts aligned
    return raw[len(MAGIC) + 4:len(MAGIC) + 4 + n].decode("utf-8")


def test_every_tensor_starts_at_a_multiple_of_four_bytes(tmp_path):
    export_model(tiny_model(), tmp_path / "m.bin", "int8")
    header = json.loads(_header(tmp_path / "m.bin"))
    tensors = header["tensors"]
    offsets = [t["offset"] for t in tensors] + [t["scale"]["offset"] for t in tensors if "scale" in t]
    assert offsets and all(o % 4 == 0 for o in offsets)


def test_an_untied_model_without_biases_round_trips(tmp_path):
    model = tiny_model(tie_weights=False, bias=False)
    export_model(model, tmp_path / "m.bin", "float32")
    loaded = load_export_model(tmp_path / "m.bin")
    idx = torch.tensor([[1, 2, 3, 4, 5]])
    torch.testing.assert_close(loaded(idx)[0], model(idx)[0], rtol=0, atol=0)


def test_the_model_on_int8_weights_computes_what_the_packages_quantized_model_computes(tmp_path, course):
    """The reference: `quantize(model, "int8-channel", include_embeddings=True)`, the quantization chapter's model."""
    model, tokenizer = course
    export_model(model, tmp_path / "c.bin", "int8")
    loaded = load_export_model(tmp_path / "c.bin")
    idx = torch.tensor([tokenizer.encode("ROMEO:\nWhat light through yonder window breaks?")])
    with torch.no_grad():
        reference = quantize(model, "int8-channel", include_embeddings=True)(idx)[0]
        torch.testing.assert_close(loaded(idx)[0], reference, rtol=1e-5, atol=1e-5)
        # and int8 barely moves the course model's predictions
        drift = (torch.softmax(loaded(idx)[0], -1) - torch.softmax(model(idx)[0], -1)).abs().max()
    assert float(drift) < 0.02


def test_the_course_model_in_float16_is_the_committed_model_exactly(tmp_path, course):
    """The committed weights are float16 already, so this file loses nothing."""
    model, _ = course
    export_model(model, tmp_path / "c.bin", "float16")
    loaded = load_export_model(tmp_path / "c.bin")
    idx = torch.arange(0, 512, 7).view(1, -1)
    with torch.no_grad():
        torch.testing.assert_close(loaded(idx)[0], model(idx)[0], rtol=0, atol=0)


@pytest.mark.parametrize("dtype", ["int8", "float16"])
def test_the_course_model_file_is_at_most_10_mb(tmp_path, course, dtype):
    size = export_model(course[0], tmp_path / "c.bin", dtype)
    assert size == (tmp_path / "c.bin").stat().st_size <= 10_000_000


def test_export_refuses_what_it_cannot_write(tmp_path):
    with pytest.raises(ValueError, match="choose one of"):
        export_model(tiny_model(), tmp_path / "m.bin", "int4")
    with pytest.raises(TypeError, match="llmscratch.GPT"):
        export_model(torch.nn.Linear(2, 2), tmp_path / "m.bin")
    model = tiny_model()
    with torch.no_grad():
        model.blocks[0].attention.qkv.weight[0, 0] = 1e6
    with pytest.raises(ValueError, match="float16's range"):
        export_model(model, tmp_path / "m.bin", "float16")


def corruptions(raw: bytes) -> dict[str, tuple[bytes, str]]:
    """Bad files made from a good one, each with the words its error must contain."""
    (n,) = struct.unpack_from("<I", raw, len(MAGIC))
    header = raw[12:12 + n]
    return {
        "wrong magic": (b"GGUF" + raw[4:], "not a llmscratch export"),
        "empty": (b"", "not a llmscratch export"),
        "cut in the length": (raw[:10], "truncated"),
        "cut in the header": (raw[:100], "truncated"),
        "cut in the data": (raw[:-5], "truncated"),
        "header not JSON": (raw[:12] + b"{" * n + raw[12 + n:], "does not parse"),
        "header without tensors": (raw[:12] + json.dumps({"config": {}}).encode().ljust(n) + raw[12 + n:],
                                   "does not parse"),
        "unknown dtype": (raw[:12] + header.replace(b'"float32"', b'"float64"') + raw[12 + n:], "does not parse"),
        "a shape that does not fit its bytes": (raw[:12] + header.replace(b'"shape":[40,32]', b'"shape":[40,31]')
                                                + raw[12 + n:], "cannot hold"),
    }


@pytest.mark.parametrize("case", list(corruptions(b"LLMSGPT1" + struct.pack("<I", 0))))
def test_bad_files_raise_clear_errors(tmp_path, case):
    export_model(tiny_model(), tmp_path / "m.bin", "int8")
    raw, words = corruptions((tmp_path / "m.bin").read_bytes())[case]
    (tmp_path / "bad.bin").write_bytes(raw)
    with pytest.raises(ExportFileError, match=words):
        load_export(tmp_path / "bad.bin")


def test_the_fixtures_are_the_packages_outputs_on_the_exported_weights(tmp_path, course):
    _, tokenizer = course
    model = GPT(GPTConfig(vocab_size=tokenizer.vocab_size, context_length=64, d_model=32, n_layers=2, n_heads=4,
                          position="rope")).eval()
    export_model(model, tmp_path / "m.bin", "int8")
    f = export_fixtures(tmp_path / "fixtures.json", tmp_path / "m.bin", tokenizer, prompt="ROMEO:\n", new_tokens=12)
    assert json.loads((tmp_path / "fixtures.json").read_text()) == json.loads(json.dumps(f))
    m = f["model"]
    loaded = load_export_model(tmp_path / "m.bin")
    assert m["file"] == "m.bin" and m["prompt_ids"] == tokenizer.encode("ROMEO:\n")
    assert m["greedy_ids"] == generate(loaded, torch.tensor([m["prompt_ids"]]), 12, temperature=0)[0]
    assert [ids[0] for ids in m["top5_ids"]] == m["greedy_ids"]  # greedy picks the most likely token
    assert all(len(p) == 5 and p == sorted(p, reverse=True) for p in m["top5_probs"])
    a = f["attention"]
    torch.testing.assert_close(torch.tensor(a["y"]), torch.tensor(a["y_whole"]))  # the cache changes nothing
    assert all(case["ids"] == tokenizer.encode(case["text"]) for case in f["tokenizer"]["encode"])
    classes = f["tokenizer"]["classes"]
    assert classes[0] == [0, 3] and [48, 1] in classes and [65, 0] in classes and [133, 2] in classes  # U+0085
    with pytest.raises(ValueError, match="must fit"):
        export_fixtures(tmp_path / "f.json", tmp_path / "m.bin", tokenizer, prompt="x" * 60, new_tokens=50)


def test_the_javascript_engine_passes_its_checks_in_headless_chromium():
    """tools/playground_check.py: tensor ops, attention, tokenizer, sampling and the course model in the browser."""
    pytest.importorskip("playwright")
    import playground_check

    if not Path(playground_check.CHROMIUM).exists():
        pytest.skip(f"{playground_check.CHROMIUM} is not installed")
    run = playground_check.check(["int8"], speed=0, timeout_s=120)["int8"]
    failed = [f"{r['name']}: {r['detail']}" for r in run["results"] if r["status"] == "FAIL"]
    assert not failed and not run["problems"], failed + run["problems"]
    names = " ".join(r["name"] for r in run["results"])
    assert "greedy 50 ids" in names and "top-5" in names and "tokenizer.encode" in names
