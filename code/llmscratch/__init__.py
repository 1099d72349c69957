"""llmscratch: the code of the course, one module per idea.

The chapters import the public API from here: ``from llmscratch import load_text, CharTokenizer``.
"""

from .analysis import attention_statistics
from .attention import CausalSelfAttention, scaled_dot_product_attention, sliding_window_mask
from .bigram import CountingBigram
from .bpe import GPT2_PATTERN, BPETokenizer
from .checkpoints import CheckpointError
from .config import GPT_PRESETS, GPTConfig
from .course import load_course_model
from .data import DATASETS, DataError, load_text, train_val_test_split
from .datasets import PairBatches, TextBatches, contiguous_split, get_batch, name_windows, stream_windows
from .decoding import beam_search
from .diagnostics import gradient_norms, layer_gradient_norms
from .embeddings import BagOfEmbeddingsConfig, BagOfEmbeddingsLM
from .evaluation import bits_per_char, position_losses, token_nlls
from .kv_cache import KVCache
from .long_context import with_window
from .memory import MemoryEstimate, measure_memory, memory_estimate
from .mlp import MLP_PRESETS, MLPConfig, MLPLanguageModel, NeuralBigram
from .model import GPT, active_parameters, parameter_formula
from .moe import MoEFeedForward, route
from .paging import PagedAllocator
from .quantization import QUANT_SCHEMES, QuantScheme
from .quantized_model import quantize, storage_report
from .runtime import eval_mode, resolve_device
from .sampling import generate, next_token_probs
from .serving import generate_padded
from .speculative import speculative_generate
from .tiled_attention import tiled_attention
from .tokenizers import CharTokenizer, TokenizerFileError
from .training import History, TrainConfig, evaluate_loss, learning_rate_at, train

__all__ = [
    "DATASETS",
    "GPT2_PATTERN",
    "BPETokenizer",
    "BagOfEmbeddingsConfig",
    "BagOfEmbeddingsLM",
    "CharTokenizer",
    "CountingBigram",
    "DataError",
    "TokenizerFileError",
    "load_text",
    "train_val_test_split",
    # datasets, mlp, sampling, train
    "CheckpointError",
    "History",
    "MLP_PRESETS",
    "MLPConfig",
    "MLPLanguageModel",
    "NeuralBigram",
    "PairBatches",
    "TextBatches",
    "TrainConfig",
    "contiguous_split",
    "evaluate_loss",
    "beam_search",
    "generate",
    "get_batch",
    "learning_rate_at",
    "name_windows",
    "next_token_probs",
    "stream_windows",
    "train",
    # runtime
    "eval_mode",
    "resolve_device",
    # evaluation
    "bits_per_char",
    "token_nlls",
    # the course model
    "load_course_model",
    # attention, model
    "CausalSelfAttention",
    "GPT",
    "GPTConfig",
    "GPT_PRESETS",
    "parameter_formula",
    "position_losses",
    "scaled_dot_product_attention",
    # analysis, diagnostics, memory
    "MemoryEstimate",
    "attention_statistics",
    "gradient_norms",
    "layer_gradient_norms",
    "measure_memory",
    "memory_estimate",
    # mixture of experts
    "MoEFeedForward",
    "active_parameters",
    "route",
    # long context
    "KVCache",
    "sliding_window_mask",
    "tiled_attention",
    "with_window",
    # serving (Part 4)
    "PagedAllocator",
    "generate_padded",
    "speculative_generate",
    # quantization
    "QUANT_SCHEMES",
    "QuantScheme",
    "quantize",
    "storage_report",
]
__version__ = "0.1.0"
