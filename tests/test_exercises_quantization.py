"""llmscratch.exercises.quantization: the checker passes the package's answer and rejects plausible wrong ones."""

import json
import re
import struct

import pytest
import torch

from llmscratch.exercises import ExerciseError, check_absmax, check_export_header
from llmscratch.quantization import QuantScheme, quantize_tensor


def package_absmax(w, bits):
    qt = quantize_tensor(w, QuantScheme(bits=bits, granularity="channel"))
    return qt.codes, qt.scale.float()


def exact_absmax(w, bits):
    qmax = 2 ** (bits - 1) - 1
    amax = w.abs().amax(dim=1, keepdim=True)
    scale = torch.where(amax > 0, amax / qmax, torch.ones_like(amax))
    return (w / scale).round().clamp(-qmax, qmax), scale


def test_the_checker_passes_the_package_and_a_float32_solution(capsys):
    check_absmax(package_absmax)
    check_absmax(exact_absmax)
    assert capsys.readouterr().out.count("check_absmax: all") == 2


def qmax_off_by_one(w, bits):
    """Divides by 2^(bits-1), the size of the negative half, instead of 2^(bits-1) - 1."""
    scale = w.abs().amax(dim=1, keepdim=True).clamp_min(1e-12) / 2 ** (bits - 1)
    return (w / scale).round(), scale


def one_scale_for_the_tensor(w, bits):
    qmax = 2 ** (bits - 1) - 1
    scale = (w.abs().max() / qmax).expand(w.shape[0], 1)
    return (w / scale).round(), scale


def truncates(w, bits):
    q, scale = exact_absmax(w, bits)
    return (w / scale).trunc(), scale


def divides_by_zero(w, bits):
    scale = w.abs().amax(dim=1, keepdim=True) / (2 ** (bits - 1) - 1)
    return (w / scale).round(), scale


@pytest.mark.parametrize("wrong, says", [(qmax_off_by_one, "qmax"), (one_scale_for_the_tensor, "one scale per row"),
                                         (truncates, "rounded, not truncated"), (divides_by_zero, "row of zeros")])
def test_the_checker_rejects_plausible_mistakes(wrong, says):
    with pytest.raises(ExerciseError, match=says):
        check_absmax(wrong)


def header_by_hand(raw):
    if raw[:8] != b"LLMSGPT1":
        raise ValueError("not an export")
    (n,) = struct.unpack("<I", raw[8:12])
    return json.loads(raw[12:12 + n])


def header_big_endian(raw):
    (n,) = struct.unpack(">I", raw[8:12])
    return json.loads(raw[12:12 + n])


def header_without_the_magic_check(raw):
    (n,) = struct.unpack("<I", raw[8:12])
    return json.loads(raw[12:12 + n])


def header_without_the_tensors(raw):
    header = header_by_hand(raw)
    del header["tensors"]
    return header


def test_the_header_checker_passes_a_solution_by_hand(capsys):
    check_export_header(header_by_hand)
    assert "check_export_header: all 4" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, says", [(header_big_endian, "your function raised"),
                                         (header_without_the_magic_check, "expected ValueError"),
                                         (header_without_the_tensors, "missing ['tensors']")])
def test_the_header_checker_rejects_plausible_mistakes(wrong, says):
    with pytest.raises(ExerciseError, match=re.escape(says)):
        check_export_header(wrong)
