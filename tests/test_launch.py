"""Launch settings checked against fairseq's own distributed initialisation (no GPU needed)."""
import os
import subprocess

import pytest
import torch
from omegaconf import OmegaConf

from conftest import silent_manifests
from ae_hubert.common.errors import AeHubertError
from ae_hubert.pipeline.launch import distributed_overrides, sbatch_script, stage_groups, write_slurm
from ae_hubert.pipeline.plan import plan
from ae_hubert.pipeline.schedule import load_schedule


def fairseq_cfg(overrides):
    """fairseq's DistributedTrainingConfig with our overrides (unknown keys would raise)."""
    from fairseq.dataclass.configs import FairseqConfig

    cfg = OmegaConf.merge(OmegaConf.structured(FairseqConfig), OmegaConf.from_dotlist(overrides))
    return cfg.distributed_training


def test_one_node_spawns_one_process_per_gpu(monkeypatch):
    from fairseq.distributed.utils import infer_init_method

    for key in ("SLURM_JOB_NODELIST", "SLURM_STEP_NODELIST", "MASTER_ADDR", "RANK"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 8)
    cfg = fairseq_cfg(distributed_overrides(1, 8))
    infer_init_method(cfg)
    assert cfg.distributed_world_size == 8 and cfg.distributed_num_procs == 8
    assert cfg.distributed_init_method.startswith("tcp://localhost:")
    assert distributed_overrides(1, 1) == []


def test_slurm_multi_node_ranks_come_from_slurm(monkeypatch):
    from fairseq.distributed.utils import infer_init_method

    env = {"SLURM_JOB_NODELIST": "gpu[01-04]", "SLURM_NNODES": "4", "SLURM_NTASKS_PER_NODE": "8",
           "SLURM_NODEID": "2", "SLURM_PROCID": "17", "SLURM_LOCALID": "1"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("SLURM_STEP_NODELIST", raising=False)
    monkeypatch.setattr(subprocess, "check_output", lambda cmd: b"gpu01\ngpu02\ngpu03\ngpu04\n")
    devices = []
    monkeypatch.setattr(torch.cuda, "set_device", devices.append)
    cfg = fairseq_cfg(distributed_overrides(4, 8, port=29700))
    infer_init_method(cfg)
    assert devices == [1]
    assert cfg.distributed_init_method == "tcp://gpu01:29700"
    assert (cfg.distributed_rank, cfg.device_id, cfg.distributed_world_size) == (17, 1, 32)
    assert cfg.distributed_no_spawn


def _data(tmp_path, n=40):
    """40 one-hour utterances (silent links), enough frames for K=500 at 10%."""
    return silent_manifests(tmp_path / "data", n, 3600)


def _steps(schedule, tmp_path, data, overrides=(), nodes=4, gpus=8):
    return plan(load_schedule(schedule, data, [*overrides, *distributed_overrides(nodes, gpus)]), str(tmp_path / "w"))


@pytest.mark.slow
def test_slurm_scripts_for_a_schedule(tmp_path):
    steps = _steps("standard", tmp_path, _data(tmp_path))
    stages = [stage for stage, _ in stage_groups(steps)]
    assert stages[:5] == ["iter1.km.dump", "iter1.km.kmeans", "iter1.km.labels", "iter1.train", "iter2.km.dump"]
    paths = write_slurm(steps, str(tmp_path / "slurm"), 4, 8)
    train = open(paths[stages.index("iter1.train")]).read()
    assert "#SBATCH --nodes=4" in train and "#SBATCH --ntasks-per-node=8" in train
    assert "srun fairseq-hydra-train" in train and "distributed_training.distributed_world_size=32" in train
    assert "distributed_training.distributed_port=29671" in train
    kmeans = open(paths[stages.index("iter1.km.kmeans")]).read()  # every argument the driver passes
    assert "--max-iter 100" in kmeans and "--seed 1" in kmeans and "--streamed" in kmeans
    dump2 = open(paths[stages.index("iter2.km.dump")]).read()
    for st in steps:  # the scripts hold exactly the steps' command lines, none re-parsed
        if st.stage == "iter2.km.dump":
            assert st.shell() in dump2
    submit = open(paths[-1]).read()
    assert submit.count("sbatch --parsable") == len(stages) and "--dependency=afterok" in submit
    for p in paths:  # every script is valid bash
        subprocess.run(["bash", "-n", p], check=True)


@pytest.mark.slow
def test_adaptive_schedule_resolves_its_layer_under_slurm(tmp_path):
    """layer: auto is a choose-layer step writing a JSON that the sharded dump reads (--layer-from)."""
    steps = _steps("adaptive_toy", tmp_path, _data(tmp_path), nodes=1, gpus=1)
    choose = next(st for st in steps if st.args[0] == "choose-layer")
    json_path = choose.args[choose.args.index("--json") + 1]
    dumps = [st for st in steps if st.stage == choose.stage.replace("choose_layer", "dump")]
    assert dumps and all(st.args[st.args.index("--layer-from") + 1] == json_path for st in dumps)
    assert not any("<auto>" in a for st in steps for a in st.args)
    # a work dir whose choice finished by the earlier protocol (chosen on valid) keeps it
    assert choose.done_as == ((*choose.args[:5], "--split", "valid", *choose.args[5:]),)
    paths = write_slurm(steps, str(tmp_path / "slurm"), 1, 1)
    names = [os.path.basename(p) for p in paths]
    assert names.index(next(n for n in names if "choose_layer" in n)) < names.index(
        next(n for n in names if n.endswith(dumps[0].stage + ".sbatch")))
    for p in paths:
        subprocess.run(["bash", "-n", p], check=True)


def test_sharded_dump_becomes_an_array_job(tmp_path):
    sched = tmp_path / "s.yaml"
    sched.write_text("nshard: 3\niterations:\n  - targets: [{source: mfcc, k: 10}]\n    max_update: 5\n")
    steps = _steps(str(sched), tmp_path, _data(tmp_path), nodes=1, gpus=1)
    group = dict(stage_groups(steps))["iter1.km.dump"]
    script = sbatch_script("iter1.km.dump", group, 1, 1, "/logs", "1:00:00")
    assert "#SBATCH --array=0,1,2" in script and 'case "$SLURM_ARRAY_TASK_ID" in' in script
    for st in group:
        assert st.shell() in script and st.rank in (0, 1, 2)
    with pytest.raises(AeHubertError):
        distributed_overrides(0, 8)
