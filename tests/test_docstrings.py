"""The worked examples in the package's docstrings run and print what they claim."""

import doctest
import importlib
import pkgutil

import pytest

import llmscratch

MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(llmscratch.__path__, prefix="llmscratch.")
    if not info.name.endswith("__main__")
)
# Modules whose docstrings teach by example: each must keep at least one.
WITH_EXAMPLES = {
    "llmscratch.analysis", "llmscratch.attention", "llmscratch.bigram", "llmscratch.blocks",
    "llmscratch.bpe.pretokenization", "llmscratch.bpe.tokenizer", "llmscratch.bpe.train", "llmscratch.checks",
    "llmscratch.config", "llmscratch.data", "llmscratch.dedup", "llmscratch.export", "llmscratch.instructions",
    "llmscratch.preferences", "llmscratch.sft", "llmscratch.synthetic",
    "llmscratch.reward", "llmscratch.decoding", "llmscratch.datasets", "llmscratch.diagnostics",
    "llmscratch.embeddings", "llmscratch.evaluation", "llmscratch.fileio", "llmscratch.memory", "llmscratch.mlp",
    "llmscratch.model", "llmscratch.paging", "llmscratch.positional", "llmscratch.scheduling", "llmscratch.serving",
    "llmscratch.speculative", "llmscratch.provenance", "llmscratch.runtime",
    "llmscratch.sampling", "llmscratch.tokenizers", "llmscratch.training", "llmscratch.viz",
}


def test_the_list_names_real_modules():
    assert WITH_EXAMPLES <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    if name in WITH_EXAMPLES:
        assert result.attempted > 0, f"{name} has no examples"
