"""all-MiniLM-L6-v2 (sentence-transformers) in plain numpy: the BERT WordPiece tokenizer and the
forward pass (6 layers, 384 wide, 12 heads), mean pooling and L2 normalisation, as
sentence-transformers computes them. Written from the model's config and the BERT paper's
definitions; no torch needed, so the example server starts in well under a second.

Weights come from a mapping name -> numpy array: the tensorinit arena (server.py) or a
safetensors file read directly (read_safetensors below, the reference without tensorinit).
"""

import json
import os
import struct
import unicodedata

import numpy as np

HIDDEN, HEADS, LAYERS = 384, 12, 6
LAYER_NORM_EPS = 1e-12


# --- tokenizer (BertTokenizer, uncased) -------------------------------------------------------
def _is_control(ch):
    return ch not in "\t\n\r" and unicodedata.category(ch) in ("Cc", "Cf")


def _is_whitespace(ch):
    return ch in " \t\n\r" or unicodedata.category(ch) == "Zs"


def _is_punctuation(ch):
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True  # all non-alphanumeric ASCII, as BERT treats it
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp):
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF
            or 0x2A700 <= cp <= 0x2B73F or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF
            or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


class WordPieceTokenizer:
    """Lower-cases, strips accents, splits on whitespace, punctuation and CJK characters, then
    splits each word greedily into the longest pieces in vocab.txt ("##" marks a continuation)."""

    def __init__(self, vocab_path, max_length=256):
        with open(vocab_path, encoding="utf-8") as f:
            self.vocab = {line.rstrip("\n"): i for i, line in enumerate(f)}
        self.max_length = max_length
        self.cls, self.sep, self.unk = self.vocab["[CLS]"], self.vocab["[SEP]"], self.vocab["[UNK]"]

    def _words(self, text):
        cleaned = []
        for ch in text:
            cp = ord(ch)
            if cp == 0 or cp == 0xFFFD or _is_control(ch):
                continue
            if _is_cjk(cp):
                cleaned.append(" %s " % ch)
            else:
                cleaned.append(" " if _is_whitespace(ch) else ch)
        words = []
        for word in "".join(cleaned).split():
            word = unicodedata.normalize("NFD", word.lower())
            word = "".join(ch for ch in word if unicodedata.category(ch) != "Mn")
            current = []
            for ch in word:
                if _is_punctuation(ch):
                    if current:
                        words.append("".join(current))
                        current = []
                    words.append(ch)
                else:
                    current.append(ch)
            if current:
                words.append("".join(current))
        return words

    def _pieces(self, word):
        if len(word) > 100:
            return [self.unk]
        pieces, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.vocab:
                    pieces.append(self.vocab[piece])
                    break
                end -= 1
            if end == start:
                return [self.unk]
            start = end
        return pieces

    def encode(self, text):
        ids = [i for word in self._words(text) for i in self._pieces(word)]
        return [self.cls] + ids[: self.max_length - 2] + [self.sep]


# --- the model -----------------------------------------------------------------------------------
def _erf(x):
    """erf, vectorised (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7): numpy has none, and the
    model's GELU is the exact erf form."""
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return sign * (1.0 - poly * np.exp(-a * a))


def _gelu(x):
    return 0.5 * x * (1.0 + _erf(x / np.float32(np.sqrt(2.0)))).astype(np.float32)


def _layer_norm(x, weight, bias):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + LAYER_NORM_EPS) * weight + bias


def _linear(x, w, prefix):
    return x @ w[prefix + ".weight"].T + w[prefix + ".bias"]


class MiniLM:
    """Sentence embeddings from a weights mapping (state-dict names, float32 numpy arrays)."""

    def __init__(self, weights, tokenizer):
        missing = [n for n in self.required_names() if n not in weights]
        if missing:
            raise KeyError("weights lack %d tensors, e.g. %s" % (len(missing), missing[0]))
        self.w = weights
        self.tokenizer = tokenizer

    @staticmethod
    def required_names():
        names = ["embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
                 "embeddings.token_type_embeddings.weight", "embeddings.LayerNorm.weight",
                 "embeddings.LayerNorm.bias"]
        for i in range(LAYERS):
            p = "encoder.layer.%d." % i
            for part in ("attention.self.query", "attention.self.key", "attention.self.value",
                         "attention.output.dense", "attention.output.LayerNorm", "intermediate.dense",
                         "output.dense", "output.LayerNorm"):
                names += [p + part + ".weight", p + part + ".bias"]
        return names

    def _encoder_layer(self, x, additive_mask, i):
        w, p = self.w, "encoder.layer.%d." % i
        batch, length, _ = x.shape
        head = HIDDEN // HEADS

        def split(t):  # (B, L, H) -> (B, heads, L, head)
            return t.reshape(batch, length, HEADS, head).transpose(0, 2, 1, 3)

        q = split(_linear(x, w, p + "attention.self.query"))
        k = split(_linear(x, w, p + "attention.self.key"))
        v = split(_linear(x, w, p + "attention.self.value"))
        scores = q @ k.transpose(0, 1, 3, 2) / np.float32(np.sqrt(head)) + additive_mask
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        probs = scores / scores.sum(-1, keepdims=True)
        context = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, length, HIDDEN)
        attended = _layer_norm(_linear(context, w, p + "attention.output.dense") + x,
                               w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"])
        inner = _gelu(_linear(attended, w, p + "intermediate.dense"))
        return _layer_norm(_linear(inner, w, p + "output.dense") + attended,
                           w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"])

    def embed(self, sentences):
        """(len(sentences), 384) float32, unit length: mean of the last layer over real tokens."""
        ids = [self.tokenizer.encode(s) for s in sentences]
        length = max(len(i) for i in ids)
        tokens = np.zeros((len(ids), length), dtype=np.int64)
        mask = np.zeros((len(ids), length), dtype=np.float32)
        for row, seq in enumerate(ids):
            tokens[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1.0
        w = self.w
        x = (w["embeddings.word_embeddings.weight"][tokens]
             + w["embeddings.position_embeddings.weight"][:length][None, :, :]
             + w["embeddings.token_type_embeddings.weight"][0])
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        additive = ((1.0 - mask) * np.finfo(np.float32).min)[:, None, None, :]
        for i in range(LAYERS):
            x = self._encoder_layer(x, additive, i)
        pooled = (x * mask[:, :, None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return (pooled / norms).astype(np.float32)


# --- reading the original file (the reference path, no tensorinit) ------------------------------
_NUMPY = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64, "I32": np.int32,
          "U8": np.uint8, "I8": np.int8}


def read_safetensors(path):
    """{name: numpy array} straight from a safetensors file (header parsed here, data copied)."""
    with open(path, "rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        dtype = np.dtype(_NUMPY[info["dtype"]]).newbyteorder("<")
        out[name] = np.frombuffer(data, dtype=dtype, count=(end - begin) // dtype.itemsize,
                                  offset=begin).reshape(info["shape"])
    return out


def model_dir_tokenizer(model_dir):
    max_length = 256
    config = os.path.join(model_dir, "sentence_bert_config.json")
    if os.path.exists(config):
        with open(config) as f:
            max_length = json.load(f).get("max_seq_length", max_length)
    return WordPieceTokenizer(os.path.join(model_dir, "vocab.txt"), max_length)
