"""llama2.c models: checkpoint reader/writers, tokenizer, float32 reference, integer sampler, and
the all-integer design (intmodel golden model on the goldens of ops/, quant_study evaluation)."""

from tinydeploy.models import default_checkpoint_path, default_tokenizer_path

from .checkpoint import (LlamaConfig, LlamaWeights, QuantizedTensor, read_checkpoint, write_v0,
                         write_v1, write_v2)
from .intmodel import Calibration, Design, IntLlama, calibrate
from .reference import FloatLlama
from .sampling import SamplerParams, XorShiftRng, logits_to_q8, sample
from .tokenizer import BOS_ID, EOS_ID, Tokenizer


def load_default() -> tuple[LlamaConfig, LlamaWeights, Tokenizer]:
    """The bundled stories260K model and its tokenizer."""
    cfg, w = read_checkpoint(default_checkpoint_path())
    return cfg, w, Tokenizer.load(default_tokenizer_path(), cfg.vocab_size)


__all__ = ["BOS_ID", "EOS_ID", "Calibration", "Design", "FloatLlama", "IntLlama", "LlamaConfig",
           "LlamaWeights", "QuantizedTensor", "SamplerParams", "Tokenizer", "XorShiftRng",
           "calibrate", "load_default", "logits_to_q8", "read_checkpoint", "sample", "write_v0",
           "write_v1", "write_v2"]
