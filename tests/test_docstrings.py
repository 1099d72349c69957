"""The worked examples in the package's docstrings run and print what they claim."""

import doctest

import pytest

import llmscratch.bigram
import llmscratch.data
import llmscratch.fileio
import llmscratch.tokenizers


@pytest.mark.parametrize("module", [llmscratch.bigram, llmscratch.data, llmscratch.fileio, llmscratch.tokenizers])
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{module.__name__} has no examples"
    assert result.failed == 0
