"""``ae-hubert spm``: sentencepiece subword units as CTC targets instead of letters.

Trains a sentencepiece model on the train transcripts (``train.wrd``, else the words of
``train.ltr``) and writes, beside the manifests, fairseq-format files: ``{split}.{name}`` (pieces
separated by spaces, one line per manifest line), ``dict.{name}.txt`` (piece and train count) and
``{name}.model``. Fine-tune with ``task.labels=[{name}] criterion.post_process=sentencepiece``;
decoding turns pieces back into words the same way (fairseq's ``post_process``).
"""
from __future__ import annotations

import collections
import os
import tempfile

from ..common.atomic import atomic_path, write_lines_atomic
from ..common.errors import AeHubertError, located
from ..common.letters import letters_to_words
from ..common.manifest import read_manifest
from ..common.text import read_lines

SPECIALS = {"<s>", "<pad>", "</s>", "<unk>"}  # fairseq's Dictionary adds its own


def transcripts(data: str, split: str) -> list[str] | None:
    """Word transcripts of a split: ``.wrd``, else the words of ``.ltr``; None when neither exists."""
    wrd, ltr = os.path.join(data, f"{split}.wrd"), os.path.join(data, f"{split}.ltr")
    if os.path.isfile(wrd):
        return [" ".join(line.split()) for line in read_lines(wrd)]
    if os.path.isfile(ltr):
        return [" ".join(letters_to_words(line)) for line in read_lines(ltr)]
    return None


RESERVED = {"tsv", "wrd", "ltr", "phn", "spk", "wrdspan", "km"}


def build_spm(data: str, vocab_size: int, name: str | None = None, model_type: str = "unigram",
              splits: tuple[str, ...] = ("train", "valid", "test")) -> dict:
    import sentencepiece as spm

    name = name or f"spm{vocab_size}"
    if name in RESERVED:  # would overwrite the manifests or the transcripts the units are made from
        raise AeHubertError(f"--name {name!r} is taken by the data's own files ({', '.join(sorted(RESERVED))})")
    texts = {split: transcripts(data, split) for split in dict.fromkeys(("train", *splits))}
    train = texts["train"]
    if not train:
        raise located(os.path.join(data, "train.wrd"), "no train transcripts (.wrd or .ltr) to train units on")
    for split, lines in texts.items():  # before training: a short transcript file would shift every label
        tsv = os.path.join(data, f"{split}.tsv")
        if lines is not None and os.path.isfile(tsv) and len(read_manifest(tsv)) != len(lines):
            raise located(tsv, f"{len(read_manifest(tsv))} utterances but the {split} transcripts have "
                               f"{len(lines)} lines (one line per manifest line)")
    with tempfile.TemporaryDirectory(dir=data) as tmp:
        text = os.path.join(tmp, "train.txt")
        with open(text, "w", encoding="utf-8") as f:
            f.write("\n".join(train) + "\n")
        prefix = os.path.join(tmp, name)
        try:
            spm.SentencePieceTrainer.train(input=text, model_prefix=prefix, vocab_size=vocab_size,
                                           model_type=model_type, character_coverage=1.0, hard_vocab_limit=True,
                                           num_threads=1, bos_id=-1, eos_id=-1, unk_id=0, minloglevel=2)
        except RuntimeError as e:  # e.g. a vocabulary smaller than the transcripts' characters
            msg = str(e).strip().splitlines()[0]
            raise located(os.path.join(data, "train.wrd"), f"sentencepiece cannot train {vocab_size} units on these "
                                                          f"transcripts ({msg.split('] ')[-1][:200]})") from None
        sp = spm.SentencePieceProcessor(model_file=prefix + ".model")
        encoded = {split: [" ".join(sp.encode(line, out_type=str)) for line in lines]
                   for split, lines in texts.items() if split in splits and lines is not None}
        train_chars = {c for line in train for c in line.replace(" ", "")}
        for split, pieces in encoded.items():  # a piece outside the units would train as <unk>: refused
            lost = sorted({p for line in pieces for p in line.split() if sp.piece_to_id(p) == sp.unk_id()})
            unseen = sorted({c for p in lost for c in p.replace("\u2581", "")} - train_chars)
            if lost and split == "train":
                raise AeHubertError(f"--vocab-size {vocab_size}: {model_type} units that leave {' '.join(lost[:10])} "
                                    f"of the train transcripts outside them (<unk>); they have {len(train_chars)} "
                                    "distinct characters: use a larger --vocab-size")
            if unseen:
                wrd = os.path.join(data, f"{split}.wrd")
                raise located(wrd if os.path.isfile(wrd) else wrd[:-3] + "ltr", f"characters the train transcripts lack "
                              f"({' '.join(unseen[:10])}): no unit trained on train can spell them (<unk>)")
            if lost:
                raise AeHubertError(f"--model-type {model_type}: units that cannot spell {' '.join(lost[:10])} of the "
                                    f"{split} transcripts (not in train; <unk>): use unigram, bpe or char units")
        with atomic_path(os.path.join(data, f"{name}.model")) as out:
            os.replace(prefix + ".model", out)
    written = {}
    counts: collections.Counter = collections.Counter()
    for split, pieces in encoded.items():
        if split == "train":
            counts.update(p for line in pieces for p in line.split())
        path = os.path.join(data, f"{split}.{name}")
        write_lines_atomic(path, pieces)
        written[split] = path
    # every piece of the model gets an entry (count >= 1), so no valid/test piece becomes <unk>
    vocab = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
    entries = sorted(((p, max(counts[p], 1)) for p in vocab if p not in SPECIALS), key=lambda pc: (-pc[1], pc[0]))
    dict_path = os.path.join(data, f"dict.{name}.txt")
    write_lines_atomic(dict_path, [f"{p} {c}" for p, c in entries])
    return {"name": name, "model": os.path.join(data, f"{name}.model"), "dict": dict_path, "labels": written,
            "units": len(entries)}
