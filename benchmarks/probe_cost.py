"""Cost of reading every layer for probing, against one forward pass, on the same utterances.

  forward     one stock forward pass: extract_features(source, padding_mask=None), top layer only,
              one utterance at a time (what fine-tuning/inference pays);
  all layers  ae_hubert's one-pass extraction of layers 0..L (HubertLayerExtractor, per utterance,
              hidden states copied out to numpy): the probe's only model cost;
  per layer   the common stock way to get layer l: extract_features(output_layer=l), once per
              layer (L+1 passes; layer 0 from the projected CNN features).
Then the probe fits of ``ae-hubert probe`` on those hidden states (k-means, ridge, CTC, word
probes), reported separately. Goal: all layers <= 1.5x forward.

Usage: python benchmarks/probe_cost.py [--work DIR] [--utterances N] [--arch base|toy]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from ae_hubert.analysis.layer_probe import probe_layers  # noqa: E402
from ae_hubert.common.audio import read_entry  # noqa: E402
from ae_hubert.common.checkpoint import load_hubert  # noqa: E402
from ae_hubert.common.fresh_checkpoint import save_fresh_hubert  # noqa: E402
from ae_hubert.common.manifest import read_manifest  # noqa: E402
from ae_hubert.corpus.toy_corpus import build  # noqa: E402
from ae_hubert.features.hubert_layers import HubertLayerExtractor  # noqa: E402


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--work", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "ae_hubert_bench_probe"))
    p.add_argument("--utterances", type=int, default=24)
    p.add_argument("--arch", default="base", choices=["base", "toy"])
    a = p.parse_args()
    torch.manual_seed(0)
    corpus = os.path.join(a.work, "corpus")
    if not os.path.isfile(os.path.join(corpus, "corpus.json")):
        build(corpus, utterances=max(60, 2 * a.utterances), seed=0)
    ckpt = os.path.join(a.work, f"{a.arch}.pt")
    if not os.path.isfile(ckpt):
        save_fresh_hubert(ckpt, a.arch, n_classes=100, label_rate=50)
    loaded = load_hubert(ckpt)
    model = loaded.model
    wavs = [read_entry(e) for e in read_manifest(os.path.join(corpus, "train.tsv")).entries[:a.utterances]]
    audio_s = sum(len(w) for w in wavs) / 16000
    xs = [torch.from_numpy(w).float().view(1, -1) for w in wavs]
    L = len(model.encoder.layers)

    def forward():
        with torch.inference_mode():
            for x in xs:
                model.extract_features(x, padding_mask=None, mask=False)

    ex = HubertLayerExtractor(model, loaded.normalize, "cpu")

    def all_layers():
        for w in wavs:
            ex([w], list(range(L + 1)))

    def per_layer():
        with torch.inference_mode():
            for x in xs:
                for layer in range(1, L + 1):
                    model.extract_features(x, padding_mask=None, mask=False, output_layer=layer)[0].numpy()
                f = model.forward_features(x).transpose(1, 2)
                model.post_extract_proj(model.layer_norm(f)).numpy()

    forward()  # warm-up
    t_fwd, t_all, t_per = timed(forward), timed(all_layers), timed(per_layer)
    t_probe = timed(lambda: probe_layers(ckpt, corpus, max_utterances=a.utterances))
    print(f"{a.arch} HuBERT ({L} layers), {a.utterances} utterances ({audio_s:.0f} s of audio), "
          f"{torch.get_num_threads()} threads")
    print(f"{'method':34s} {'seconds':>8s} {'x forward':>10s}")
    for name, t in (("one forward pass (top layer)", t_fwd), ("ae_hubert: all layers, one pass", t_all),
                    (f"stock: output_layer=l, {L + 1} passes", t_per)):
        print(f"{name:34s} {t:8.2f} {t / t_fwd:10.2f}")
    print(f"{'whole ae-hubert probe (train+valid)':34s} {t_probe:8.2f}   (extraction of both splits + fits)")


if __name__ == "__main__":
    main()
