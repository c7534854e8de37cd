"""Dev-only: optimum ONNX exports committed under tests/data/ (tinydeploy's tests and benchmarks read
those files; nothing here is a dependency of the package or its tests):

- stories260K_optimum/model.onnx: the bundled stories260K;
- gqa_random_optimum/model.onnx: a small random Llama with grouped-query attention (4 heads sharing
  1 kv head, untied classifier, Hugging Face's initialisation with torch.manual_seed(0)).

Provenance: src/tinydeploy/models/data/stories260K/stories260K_q80.bin (llama2.c Q8_0) -> float32
weights q * scale (the checkpoint's dequantization, so re-quantizing them in groups of 32 gives back
the same int8 values and scales) -> Hugging Face LlamaForCausalLM (wq and wk rows permuted per head:
llama2.c rotates consecutive pairs, Hugging Face rotates halves) -> `optimum-cli export onnx --task
text-generation-with-past` (opset and options: optimum's defaults).

Run in a throwaway venv outside the repo (pins keep pip's resolver from backtracking):
    python -m venv /work/venv-optimum
    /work/venv-optimum/bin/pip install torch "transformers==4.57.*" "optimum==2.1.*" \
        "optimum-onnx==0.1.0" onnx onnxruntime
    PYTHONPATH=src /work/venv-optimum/bin/python scripts/dev/make_optimum_fixture.py
Made with torch 2.13.0+cpu, transformers 4.57.6, optimum 2.1.0, optimum-onnx 0.1.0, onnx 1.23.2.
"""
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from transformers import LlamaConfig as HFConfig, LlamaForCausalLM

from tinydeploy.models.llama import load_default

DATA = Path(__file__).resolve().parents[2] / "tests" / "data"


def to_halves(w: np.ndarray, heads: int) -> np.ndarray:
    """Rows of a q/k projection from llama2.c's consecutive pairs to Hugging Face's halves:
    within each head, row 2i goes to i and row 2i+1 to head_size/2 + i."""
    rows, cols = w.shape
    return w.reshape(heads, rows // heads // 2, 2, cols).transpose(0, 2, 1, 3).reshape(rows, cols)


def hf_model():
    cfg, w, _ = load_default()
    hf = HFConfig(vocab_size=cfg.vocab_size, hidden_size=cfg.dim, intermediate_size=cfg.hidden_dim,
                  num_hidden_layers=cfg.n_layers, num_attention_heads=cfg.n_heads,
                  num_key_value_heads=cfg.n_kv_heads, max_position_embeddings=cfg.seq_len,
                  rms_norm_eps=cfg.norm_eps, rope_theta=cfg.rope_theta, tie_word_embeddings=True,
                  bos_token_id=1, eos_token_id=2, hidden_act="silu", torch_dtype="float32")
    model = LlamaForCausalLM(hf).eval()
    sd = {"model.embed_tokens.weight": w.token_embedding, "model.norm.weight": w.rms_final,
          "lm_head.weight": w.wcls}
    for l in range(cfg.n_layers):
        p = f"model.layers.{l}."
        sd.update({p + "input_layernorm.weight": w.rms_att[l],
                   p + "post_attention_layernorm.weight": w.rms_ffn[l],
                   p + "self_attn.q_proj.weight": to_halves(w.wq[l], cfg.n_heads),
                   p + "self_attn.k_proj.weight": to_halves(w.wk[l], cfg.n_kv_heads),
                   p + "self_attn.v_proj.weight": w.wv[l], p + "self_attn.o_proj.weight": w.wo[l],
                   p + "mlp.gate_proj.weight": w.w1[l], p + "mlp.down_proj.weight": w.w2[l],
                   p + "mlp.up_proj.weight": w.w3[l]})
    missing = model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v, np.float32))
                                     for k, v in sd.items()}, strict=True)
    assert not missing.missing_keys and not missing.unexpected_keys
    return model


def random_gqa():
    torch.manual_seed(0)
    return LlamaForCausalLM(HFConfig(
        vocab_size=512, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=1, max_position_embeddings=64, rms_norm_eps=1e-5, rope_theta=10000.0,
        tie_word_embeddings=False, bos_token_id=1, eos_token_id=2, hidden_act="silu")).eval()


def export(model, name: str):
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        out = Path(tmp) / "onnx"
        subprocess.run([str(Path(sys.executable).with_name("optimum-cli")), "export", "onnx",
                        "--model", tmp, "--task", "text-generation-with-past", str(out)], check=True)
        (DATA / name).mkdir(parents=True, exist_ok=True)
        for f in ("model.onnx", "config.json"):   # config.json states the context (max_position_embeddings)
            shutil.copy(out / f, DATA / name / f)
    print("wrote", DATA / name / "model.onnx")


def main():
    export(hf_model(), "stories260K_optimum")
    export(random_gqa(), "gqa_random_optimum")


if __name__ == "__main__":
    main()
