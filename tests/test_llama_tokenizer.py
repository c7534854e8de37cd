"""llama2.c tokenizer: decode of the reference tokens and encode/decode round trips.

Expected ids below were produced by llama2.c run.c's encode (compiled in a session, not committed).
"""

import json

import numpy as np
import pytest

from tinydeploy.errors import TinydeployError
from tinydeploy.models import bundled_path, default_tokenizer_path
from tinydeploy.models.llama.tokenizer import BOS_ID, EOS_ID, Tokenizer


@pytest.fixture(scope="module")
def tok():
    return Tokenizer.load(default_tokenizer_path(), vocab_size=512)


def test_reference_tokens_decode_to_reference_text(tok):
    ref = json.loads(bundled_path("reference_tokens.json").read_text())
    assert tok.decode(ref["tokens"]) == ref["text"]
    assert tok.decode([BOS_ID] + ref["tokens"][:3]) == "Once upon a"


def test_encode_matches_run_c(tok):
    assert tok.encode("Once upon a time, there was a little girl named Lily.") == [
        1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426]
    assert tok.encode("Hello world") == [1, 346, 306, 414, 263, 304, 341]
    assert tok.encode("") == [BOS_ID]
    assert tok.encode("", bos=False) == []
    assert tok.encode("a", eos=True)[-1] == EOS_ID


@pytest.mark.parametrize("text", [
    "Once upon a time, there was a little girl named Lily.",
    " leading space and  double  spaces",
    'Tom said, "Let\'s go!"\nThe end.\n\n',
    "café naïve 日本語 😀 ok",
    "xyzzy qwertyuiop ZZZ 12345 !!!",
])
def test_round_trip(tok, text):
    assert tok.decode(tok.encode(text)) == text


def test_byte_fallback(tok):
    ids = tok.encode("日", bos=False)
    assert ids[1:] == [b + 3 for b in "日".encode()]
    assert tok.decode_bytes(ids[1:], prev_token=ids[0]) == "日".encode()


def test_leading_space_rule(tok):
    once = tok.encode("Once", bos=False)
    assert tok.vocab[once[-1]] == b" Once" or tok.vocab[once[0]] == b" "
    assert tok.decode(once, prev_token=BOS_ID) == "Once"
    assert tok.decode(once, prev_token=400) == " Once"


def test_truncated_tokenizer_file():
    data = default_tokenizer_path().read_bytes()
    with pytest.raises(TinydeployError, match="truncated"):
        Tokenizer.load(data[:-3])
    with pytest.raises(TinydeployError, match="holds 512 tokens, the model's vocabulary has 600"):
        Tokenizer.load(data, vocab_size=600)
    with pytest.raises(TinydeployError, match="more than 500"):
        Tokenizer.load(data, vocab_size=500)


def test_encode_refuses_invalid_utf8(tok):
    # a command line's undecodable bytes reach Python as lone surrogates (surrogateescape)
    bad = b"Lily \xff\xfe".decode("utf-8", "surrogateescape")
    with pytest.raises(TinydeployError, match="not valid UTF-8 \\(character 5\\)"):
        tok.encode(bad)


def test_encode_without_byte_fallback_tokens():
    # 40 tokens: byte-fallback ids (3 + byte) reach only byte 36; 'z' (122) has no token at all
    small = Tokenizer([b"<unk>", b"<s>", b"</s>"] + [b" "] + [b"a"] * 36, np.zeros(40), 1)
    assert small.encode("a") == [1, 3, 4]
    with pytest.raises(TinydeployError, match="no token for b'z'"):
        small.encode("z")
