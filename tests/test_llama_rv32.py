"""The compiled llama on the simulated RV32IMC(F) at 512 KiB: fits, same tokens and logits as host."""
import pytest

from helpers import check_report_schema
from tinydeploy.driver import generate
from tinydeploy.models.llama.generate import load_model
from tinydeploy.targets.rv32 import Rv32Config, Rv32Target

ARGS = dict(prompt="Lily had a dog", steps=12, temperature=0.8, top_p=0.9, seed=5)


@pytest.fixture(scope="module")
def host():
    return generate(target="host", **ARGS)


@pytest.mark.parametrize("fpu", [False, True])
def test_rv32_same_tokens_and_logits_as_host(host, fpu):
    text, rep = generate(target=Rv32Target(Rv32Config(fpu=fpu)), **ARGS)
    assert rep["token_ids"] == host[1]["token_ids"] and len(rep["token_ids"]) == 12
    assert rep["logit_hash"] == host[1]["logit_hash"]  # FNV-1a over every sampled-from logits vector
    assert text == host[0]
    assert rep["memory"]["SRAM_total"] <= 512 * 1024 and rep["memory"]["state"] == 163840
    lay = rep["layers"]  # cycles summed over the decode steps (TD_PROFILE build)
    assert all(l["cycles"] > 0 and l["engine"] == "cpu" for l in lay)
    assert sum(l["macs"] for l in lay if l["op"] == "QLinearDyn") == 259328  # the weights of one decode step
    assert {l["op"] for l in lay} >= {"QEmbedding", "QRMSNormDyn", "QLinearDyn", "QRoPE", "QAttentionKV", "QSwiGLU",
                                      "QAddSat"}
    assert rep["memory_lower_bound"]["SRAM"] <= rep["memory"]["SRAM"] <= rep["memory"]["SRAM_total"]
    check_report_schema(rep)
    c = rep["cycles_per_token"]
    assert c["prefill"] > 0 and c["decode"] > 0 and len(c["decode_at"]) == 11
    m, tok = load_model()
    assert m.generate(tok.encode(ARGS["prompt"], bos=True), 12, 0.8, 0.9, 5) == rep["token_ids"]
