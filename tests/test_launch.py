"""Launch settings checked against fairseq's own distributed initialisation (no GPU needed)."""
import os
import subprocess

import pytest
import torch
from omegaconf import OmegaConf

from ae_hubert.pipeline.launch import distributed_overrides, plan_commands, write_slurm


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


def test_slurm_scripts_for_a_schedule(tmp_path):
    data = str(tmp_path / "data")
    os.makedirs(data)
    for split in ("train", "valid"):
        with open(os.path.join(data, f"{split}.tsv"), "w") as f:
            f.write(f"{data}\nx.flac\t16000\n")
    stages = plan_commands("standard", str(tmp_path / "w"), data, distributed_overrides(4, 8))
    names = [n for n, _ in stages]
    assert names[:4] == ["iter1.km.dump", "iter1.km.kmeans", "iter1.km.labels", "iter1.train"]
    paths = write_slurm(stages, str(tmp_path / "slurm"), 4, 8)
    train = open(paths[names.index("iter1.train")]).read()
    assert "#SBATCH --nodes=4" in train and "#SBATCH --ntasks-per-node=8" in train
    assert "srun " in train and "distributed_training.distributed_world_size=32" in train
    assert "distributed_training.distributed_port=29671" in train
    dump2 = open(paths[names.index("iter2.km.dump")]).read()
    assert 'for split in train valid; do' in dump2 and '--split "$split"' in dump2
    submit = open(paths[-1]).read()
    assert submit.count("sbatch --parsable") == len(stages) and "--dependency=afterok" in submit
    for p in paths:  # every script is valid bash
        subprocess.run(["bash", "-n", p], check=True)


def test_sharded_dump_becomes_an_array_job(tmp_path):
    from ae_hubert.pipeline.launch import sbatch_script

    script = sbatch_script("iter2.km.dump", "ae-hubert dump hubert --split '{train,valid}' --nshard 4 "
                           "--rank '{0..3}'", 1, 8, "/logs", "1:00:00")
    assert "#SBATCH --array=0-3" in script and '--rank "$SLURM_ARRAY_TASK_ID"' in script
    with pytest.raises(ValueError):
        distributed_overrides(0, 8)
