"""Issue 10's bit-exactness bar: host C, rv32 and the golden model give identical token ids and
logits over ≥ 64 decoded tokens after a multi-token prompt (greedy, so every step is checked)."""
from tinydeploy.driver import generate
from tinydeploy.models.llama.generate import load_model

ARGS = dict(prompt="Once upon a time, Tom found a red ball", steps=70, temperature=0.0, top_p=0.9, seed=0)


def test_70_tokens_identical_on_host_rv32_and_golden():
    host_text, host = generate(target="host", **ARGS)
    rv_text, rv = generate(target="rv32", **ARGS)
    m, tok = load_model()
    prompt = tok.encode(ARGS["prompt"], bos=True)
    assert len(prompt) > 5
    golden = m.generate(prompt, 70, 0.0, 0.9, 0)
    assert host["token_ids"] == rv["token_ids"] == golden and len(golden) >= 64
    assert host["logit_hash"] == rv["logit_hash"]  # FNV-1a over every logits vector
    assert host_text == rv_text
