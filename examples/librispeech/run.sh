#!/usr/bin/env bash
# HuBERT on LibriSpeech with ae_hubert, end to end:
#   1. manifests + letter targets from the LibriSpeech tree (and Libri-light's limited sets)
#   2. the iteration schedule(s) at Base scale (MFCC -> k-means -> labels -> pretrain -> layer -> ...)
#   3. layer-wise probing of every saved checkpoint of every iteration (plots)
#   4. a reset sweep on Libri-light 10h (fine-tune with the top k layers re-initialised, k = $KS)
#   5. greedy decoding of dev/test clean/other for every k (inside the sweep)
# Every stage is resumable: rerun the same command after a failure or a kill.
#
#   LS=/data/LibriSpeech LL=/data/librispeech_finetuning WORK=/scratch/ae_hubert \
#     examples/librispeech/run.sh [hydra overrides for every pretraining run ...]
#
# Environment (defaults in brackets):
#   LS         LibriSpeech root (train-clean-100/, ..., dev-clean/, test-other/)      required
#   LL         Libri-light librispeech_finetuning/ root (1h/, 9h/)                    [none: fine-tune on train]
#   WORK       output root                                                              required
#   SCHEDULES  schedules to run, space-separated                               [standard progressive]
#   FT_CONFIG  fine-tuning config for the sweep                                 [finetune/base_10h]
#   FT_TRAIN   fine-tuning train split                                          [train_10h, else train]
#   KS         top-k values of the reset sweep                                  [0,1,2,3,4]
#   SWEEP_OVERRIDES  hydra overrides for every fine-tuning run (space-separated)  [none]
#   PROBE_ARGS extra arguments of `ae-hubert probe`                             [none]
# Multi-GPU / multi-node: pass fairseq's distributed options as overrides, e.g. 8 GPUs of one node:
#   distributed_training.distributed_world_size=8 distributed_training.nprocs_per_node=8
# (`ae-hubert launch --nodes N --gpus-per-node G [--slurm]` prints the settings and a SLURM script).
set -euo pipefail
: "${LS:?set LS to the LibriSpeech root}" "${WORK:?set WORK to the output directory}"
SCHEDULES=${SCHEDULES:-standard progressive}
FT_CONFIG=${FT_CONFIG:-finetune/base_10h}
KS=${KS:-0,1,2,3,4}
AE=${AE_HUBERT:-ae-hubert}
DATA=$WORK/data

ll_args=()
[[ -n "${LL:-}" ]] && ll_args=(--libri-light "$LL")
if [[ ! -f $DATA/.done ]]; then
  $AE librispeech --root "$LS" --out "$DATA" "${ll_args[@]}"
  touch "$DATA/.done"
fi
FT_TRAIN=${FT_TRAIN:-$([[ -f $DATA/train_10h.tsv ]] && echo train_10h || echo train)}
splits=()
for s in dev_clean dev_other test_clean test_other; do [[ -f $DATA/$s.tsv ]] && splits+=("$s"); done
SPLITS=$(IFS=,; echo "${splits[*]}")
VALID=$([[ -f $DATA/dev_other.tsv ]] && echo dev_other || echo valid)

for schedule in $SCHEDULES; do
  run=$WORK/$schedule
  $AE iterate --schedule "$schedule" --work-dir "$run" --data "$DATA" "$@"
  ckpt_dirs=()
  for d in "$run"/*/checkpoints; do ckpt_dirs+=("$d"); done
  # shellcheck disable=SC2086
  $AE probe --ckpt "${ckpt_dirs[@]}" --data "$DATA" --out "$WORK/probe/$schedule" ${PROBE_ARGS:-}
  last=${ckpt_dirs[-1]}/checkpoint_last.pt
  # shellcheck disable=SC2086
  $AE reset-sweep --ckpt "$last" --data "$DATA" --ks "$KS" --work-dir "$WORK/sweep/$schedule" \
    --config "$FT_CONFIG" --splits "$SPLITS" \
    dataset.train_subset="$FT_TRAIN" dataset.valid_subset="$VALID" ${SWEEP_OVERRIDES:-}
done
echo "done: probes under $WORK/probe, reset sweeps under $WORK/sweep"
