"""The llama2.c tokenizer (``tokenizer.bin`` / ``tok512.bin``): BPE by merge scores with byte fallback.

File: int32 max_token_length, then per token: float32 score, int32 length, ``length`` bytes.

Decoding follows llama2.c ``run.c``: a token's piece is its bytes, except that a piece following BOS
loses its leading space (sentencepiece's dummy prefix), and pieces of the form ``<0xXX>`` stand for
the single raw byte XX. BOS itself prints nothing (run.c never prints it).

Encoding follows run.c ``encode``: optional BOS, a dummy-prefix " " token when the text is not
empty, one token per UTF-8 code point (or, if the code point is not in the vocabulary, one token
per byte: id = byte + 3, the ``<0xXX>`` tokens), then repeatedly merge the adjacent pair whose
concatenation is a vocabulary entry with the highest score (first such pair on ties), until no pair
merges; optional EOS.
"""

from __future__ import annotations

import os
import re

import numpy as np

from tinydeploy.errors import TinydeployError

from .checkpoint import read_source

BOS_ID = 1
EOS_ID = 2
BYTE_TOKEN_OFFSET = 3  # <0x00> is token 3 in llama2.c vocabularies
_BYTE_PIECE = re.compile(rb"<0x([0-9A-Fa-f]{2})>")


class Tokenizer:
    def __init__(self, vocab: list[bytes], scores: np.ndarray, max_token_length: int):
        self.vocab = vocab
        self.scores = np.asarray(scores, np.float32)
        self.max_token_length = max_token_length
        # run.c looks strings up by binary search in a sorted copy; with unique entries a dict is
        # equivalent. On duplicates keep the lowest id (run.c's choice would depend on qsort).
        self._ids: dict[bytes, int] = {}
        for i, piece in enumerate(vocab):
            self._ids.setdefault(piece, i)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @classmethod
    def load(cls, source: str | os.PathLike | bytes, vocab_size: int | None = None) -> "Tokenizer":
        """Read a tokenizer file. Its vocabulary size is not stored: by default read tokens until the
        data ends; pass ``vocab_size`` (the model's) to check it."""
        data, name = read_source(source, "tokenizer")
        if len(data) < 4:
            raise TinydeployError(f"tokenizer {name} is truncated: {len(data)} bytes")
        max_len = int(np.frombuffer(data, "<i4", 1)[0])
        pos, vocab, scores = 4, [], []
        while pos < len(data) and (vocab_size is None or len(vocab) < vocab_size):
            if pos + 8 > len(data):
                raise TinydeployError(f"tokenizer {name} is truncated in token {len(vocab)}")
            score = np.frombuffer(data, "<f4", 1, pos)[0]
            n = int(np.frombuffer(data, "<i4", 1, pos + 4)[0])
            if n < 0 or pos + 8 + n > len(data):
                raise TinydeployError(
                    f"tokenizer {name} is truncated or corrupt in token {len(vocab)} (length {n})")
            vocab.append(data[pos + 8:pos + 8 + n])
            scores.append(score)
            pos += 8 + n
        if vocab_size is not None and (len(vocab) != vocab_size or pos != len(data)):
            held = len(vocab) if pos == len(data) else f"more than {len(vocab)}"
            raise TinydeployError(
                f"tokenizer {name} holds {held} tokens, the model's vocabulary has {vocab_size}")
        if len(vocab) <= BYTE_TOKEN_OFFSET:
            raise TinydeployError(f"tokenizer {name} has only {len(vocab)} tokens")
        return cls(vocab, np.array(scores, np.float32), max_len)

    # ------------------------------------------------------------------ decoding

    def piece(self, prev_token: int, token: int) -> bytes:
        """Bytes printed for ``token`` when it follows ``prev_token`` (run.c ``decode``)."""
        if token == BOS_ID:
            return b""
        p = self.vocab[token]
        if prev_token == BOS_ID and p.startswith(b" "):
            p = p[1:]
        m = _BYTE_PIECE.fullmatch(p)
        return bytes([int(m.group(1), 16)]) if m else p

    def decode_bytes(self, ids, prev_token: int = BOS_ID) -> bytes:
        """Concatenated pieces of ``ids``; ``prev_token`` is the token before ids[0] (BOS for text
        generated from the start, so its leading space is dropped)."""
        out = []
        for t in ids:
            t = int(t)
            out.append(self.piece(prev_token, t))
            prev_token = t
        return b"".join(out)

    def decode(self, ids, prev_token: int = BOS_ID) -> str:
        # Byte-fallback tokens may split a code point; only the joined bytes are valid UTF-8.
        return self.decode_bytes(ids, prev_token).decode("utf-8", errors="replace")

    # ------------------------------------------------------------------ encoding

    def encode(self, text: str | bytes, bos: bool = True, eos: bool = False) -> list[int]:
        try:
            raw = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        except UnicodeEncodeError as e:  # lone surrogates, e.g. undecodable bytes of a command line
            raise TinydeployError(f"cannot encode text that is not valid UTF-8 (character {e.start})") from None
        if b"\0" in raw:
            raise TinydeployError("cannot encode text containing a NUL character")
        tokens = [BOS_ID] if bos else []
        if raw:
            tokens.append(self._lookup(b" ", required=True))
        tokens += self._code_point_tokens(raw)
        self._merge(tokens)
        if eos:
            tokens.append(EOS_ID)
        return tokens

    def _lookup(self, piece: bytes, required: bool = False) -> int:
        i = self._ids.get(piece, -1)
        if i < 0 and required:
            raise TinydeployError(f"tokenizer has no token for {piece!r}")
        return i

    def _code_point_tokens(self, raw: bytes) -> list[int]:
        """One token per UTF-8 code point (a lead byte plus up to 3 continuation bytes, as run.c
        groups them, even for invalid UTF-8), or its bytes as byte-fallback tokens."""
        out, i = [], 0
        while i < len(raw):
            j = i + 1
            while j < len(raw) and (raw[j] & 0xC0) == 0x80 and j - i < 4:
                j += 1
            cp = raw[i:j]
            tid = self._lookup(cp)
            ids = [tid] if tid >= 0 else [b + BYTE_TOKEN_OFFSET for b in cp]
            if max(ids) >= len(self.vocab):  # a vocabulary without all 256 byte tokens
                raise TinydeployError(f"tokenizer has no token for {cp!r}, nor byte-fallback tokens")
            out += ids
            i = j
        return out

    def _merge(self, tokens: list[int]) -> None:
        """Greedy BPE: merge the best-scoring adjacent pair until none is in the vocabulary.
        Like run.c, BOS takes part in the pair search (it never merges in practice)."""
        while True:
            best_score, best_i, best_id = -1e10, -1, -1  # run.c's initial best score
            for i in range(len(tokens) - 1):
                tid = self._ids.get(self.vocab[tokens[i]] + self.vocab[tokens[i + 1]], -1)
                if tid >= 0 and self.scores[tid] > best_score:
                    best_score, best_i, best_id = self.scores[tid], i, tid
            if best_i < 0:
                return
            tokens[best_i:best_i + 2] = [best_id]
