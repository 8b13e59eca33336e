"""Compose a training config exactly as ``fairseq-hydra-train --config-dir D --config-name N`` will,
before any work: a misspelt override, a wrong type or an unknown model option is refused in one
line up front instead of after hours of feature dumps and k-means."""
from __future__ import annotations

import contextlib
import difflib
import re

from ..common.errors import AeHubertError


def override_key(override: str) -> str:
    """The config key a hydra override sets (``+a.b=1``, ``~a.b``, ``a.b=x=y`` -> ``a.b``)."""
    return override.lstrip("+~").split("=", 1)[0]


def where_runs_write(key: str) -> str | None:
    """Why an override key may not be given to a driven run: hydra's own settings (its run dir, log
    file names, output subdir) and the tensorboard directory say where a run writes, which the driver
    sets (each run's own directory), or None. A path there could write into another run's files."""
    if key == "hydra" or key.startswith(("hydra.", "hydra/")) or key in ("common.tensorboard_logdir",
                                                                         "common.log_file"):
        return f"{key}: where each run writes (its directory, logs, tensorboard) is set by the driver"
    return None


READS_OUTSIDE = re.compile(r"\$\{\s*['\"]?(oc\.env|env|now)\s*:")  # a resolver of the environment or the clock


def driven_override(override: str) -> str | None:
    """Why an override may not be given to a driven run, or None: one that says where the run writes
    (:func:`where_runs_write`), or whose value reads the environment or the clock (a resume would
    read it again, and could train on another value under the same recorded command)."""
    key = override_key(override)
    if where_runs_write(key):
        return where_runs_write(key)
    if key in RESUME_ONLY:
        return f"{key}: it acts only on a resume (which would then differ from an uninterrupted run), or renames " \
               "the checkpoints the driver reads; not for a driven run"
    if READS_OUTSIDE.search(override):
        return f"{override}: its value reads the environment or the clock, which a resume reads again; give the value"
    return None


def _compose(config_dir: str, config_name: str, overrides: list[str]):
    from fairseq.dataclass.initialize import add_defaults
    from hydra import compose
    from omegaconf import OmegaConf

    with _hydra_for(config_dir, config_name):
        cfg = compose(config_name=config_name, overrides=overrides)
        add_defaults(cfg)
    return OmegaConf.create(OmegaConf.to_container(cfg, resolve=True, enum_to_str=True))


def split_train_args(train_args: list[str]) -> tuple[str, str, list[str]]:
    """(config dir, config name, overrides) of ``runner.trainer.train_args``'s arguments."""
    i = train_args.index("--config-name")
    return train_args[train_args.index("--config-dir") + 1], train_args[i + 1], list(train_args[i + 2:])


def composed_as_saved(train_args: list[str]) -> dict:
    """The config ``fairseq-hydra-train ARGS`` composes (``train_args`` as ``runner.trainer.train_args``
    makes them), as hydra saves it in the run's ``.hydra/config.yaml``: unresolved, without hydra's
    own node and the plugin's path. What a run trained on is compared with it."""
    from hydra import compose
    from omegaconf import OmegaConf

    config_dir, config_name, overrides = split_train_args(train_args)
    with _hydra_for(config_dir, config_name):
        cfg = compose(config_name=config_name, overrides=overrides)
    return _without_user_dir(OmegaConf.to_container(cfg, resolve=False, enum_to_str=True))


def _without_user_dir(cfg: dict) -> dict:
    if isinstance(cfg.get("common"), dict):  # where the plugin is installed, not a setting of the run
        cfg["common"].pop("user_dir", None)
    return cfg


def saved_config(path: str) -> dict | None:
    """The config a training process composed, from hydra's record of it (``.hydra/config.yaml``),
    or None when there is none or it cannot be read."""
    from omegaconf import OmegaConf

    try:
        cfg = OmegaConf.to_container(OmegaConf.load(path), resolve=False, enum_to_str=True)
    except Exception:  # noqa: BLE001 - missing, unreadable or not YAML: not known
        return None
    return _without_user_dir(cfg) if isinstance(cfg, dict) and cfg else None


def config_differences(a, b, prefix: str = "") -> list[tuple[str, object, object]]:
    """(key as ``a.b.c``, value in ``a``, value in ``b``) of each setting that differs."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b), key=str)
                for d in config_differences(a.get(k, "<absent>"), b.get(k, "<absent>"), f"{prefix}{k}.")]
    return [] if a == b else [(prefix.rstrip(".") or "(the whole config)", a, b)]


def _suggest(config_dir: str, config_name: str, overrides: list[str], key: str) -> str:
    """A close match for ``key`` among the keys of its group, composed with the other overrides."""
    group, _, leaf = key.lstrip("+~").rpartition(".")
    others = [o for o in overrides if override_key(o) != key.lstrip("+~")]
    try:
        base = _compose(config_dir, config_name, others)
        node = base
        for part in group.split(".") if group else []:
            node = node[part]
        close = difflib.get_close_matches(leaf, [str(k) for k in node.keys()], n=1)
    except Exception:  # only a hint: the error itself stands without it
        return ""
    return f" (did you mean {group + '.' if group else ''}{close[0]}?)" if close and close[0] != leaf else ""


@contextlib.contextmanager
def _hydra_for(config_dir: str, config_name: str):
    """Hydra set up as fairseq-hydra-train sets it up for a config (our plugin registered, fairseq's
    schema stored), without its deprecation notices about fairseq's own config layout."""
    import logging
    import warnings

    from fairseq.dataclass.initialize import hydra_init
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from .. import register

    logging.getLogger("hydra").setLevel(logging.WARNING)
    register()  # our tasks/models/criteria, as common.user_dir registers them
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hydra_init(config_name)
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=config_dir, version_base="1.1"):  # fairseq's hydra.main semantics
            yield


def _plain_overrides(overrides) -> list[str]:
    return [o for o in overrides if not o.startswith("common.user_dir=")]  # the trainer's, not the config's


def compose_train_config(config_dir: str, config_name: str, overrides: list[str], where: str):
    """The composed, resolved config; :class:`AeHubertError` naming ``where`` and the bad override."""
    return _compose_or_explain(config_dir, config_name, _plain_overrides(overrides), where)


def _compose_or_explain(config_dir: str, config_name: str, overrides: list[str], where: str):
    try:
        return _compose(config_dir, config_name, overrides)
    except Exception as e:  # hydra/omegaconf raise many types; all mean a config that will not train
        lines = [ln.strip() for ln in str(e).strip().splitlines() if ln.strip()] or [type(e).__name__]
        msg = lines[0]
        m = re.search(r"Could not override '([^']+)'|Key '([^']+)' not in '(\w+)'", msg)
        hint = ""
        if m and m.group(1):
            hint = _suggest(config_dir, config_name, overrides, m.group(1))
            if not hint and len(lines) > 1 and lines[1].startswith("To append"):  # a key the config does not show
                hint = f" ({lines[1][0].lower()}{lines[1][1:]})"
        elif m:
            full = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("full_key:")), m.group(2))
            msg = f"{full} is not an option of {m.group(3)}"
        elif "HydraConfig was not set" in msg:  # ${hydra:...} outside hydra's own settings
            full = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("full_key:")), "a value")
            msg = (f"{full} reads ${{hydra:...}}, hydra's settings of the running trainer, which the driver cannot "
                   "check before it runs; write the value itself")
        raise AeHubertError(f"{where}: training config {config_name} with these overrides does not compose: "
                            f"{msg}{hint}") from None


def check_batch_fits(cfg, sizes: list[int], where: str) -> None:
    """Refuse a ``dataset.max_tokens`` that an utterance the trainer keeps does not fit: fairseq
    batches by size and stops at the first epoch on such an utterance. Its size is what HuBERT's
    dataset batches by: the whole utterance when ``pad_audio``, else at most ``max_sample_size``;
    utterances shorter than ``min_sample_size`` (or longer than ``max_keep_size``) are dropped."""
    max_tokens = cfg.dataset.get("max_tokens")
    if max_tokens is not None and int(max_tokens) < 1:  # fairseq reads 0 as "no limit": the whole split in a batch
        raise AeHubertError(f"{where}: dataset.max_tokens={max_tokens}: must be >= 1 (or null, with "
                            "dataset.batch_size)")
    if not max_tokens:
        return
    task = cfg.task
    low, keep = task.get("min_sample_size") or 0, task.get("max_keep_size")
    crop = None if task.get("pad_audio") else task.get("max_sample_size")
    for i, freq in enumerate(cfg.optimization.get("update_freq") or [1]):
        if int(freq) < 1:
            raise AeHubertError(f"{where}: optimization.update_freq[{i}]={freq}: must be >= 1")
    kept = [n for n in sizes if n >= low and (keep is None or n <= keep)]
    if sizes and not kept:
        raise AeHubertError(f"{where}: no training utterance is kept: task.min_sample_size={low}"
                            f"{f', task.max_keep_size={keep}' if keep is not None else ''} and the utterances have "
                            f"{min(sizes)}-{max(sizes)} samples")
    largest = max((n if crop is None else min(n, crop) for n in kept), default=0)
    if largest > max_tokens:
        raise AeHubertError(f"{where}: dataset.max_tokens={max_tokens} is smaller than a training utterance "
                            f"({largest} samples, {largest / 16000:.1f} s){' after cropping' if crop else ''}; "
                            f"raise it to at least {largest}")


HUBERT_CONV = "[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2"  # fairseq's default feature extractor


def conv_frames(samples: int, conv_feature_layers: str | None) -> int:
    """Frames the convolutional feature extractor makes of ``samples``. ``conv_feature_layers`` is
    fairseq's spec (``[(dim, kernel, stride)] * n + ...``; fairseq evaluates it), read here as
    literals: terms ``[...]`` or ``[...] * n`` joined by ``+``."""
    import ast

    layers = []
    for term in (conv_feature_layers or HUBERT_CONV).split("+"):
        listed, _, times = term.partition("*")
        layers += list(ast.literal_eval(listed.strip())) * (int(times) if times.strip() else 1)
    n = samples
    for _, kernel, stride in layers:
        n = (n - kernel) // stride + 1
    return n


def check_mask_fits(cfg, sizes: dict[str, list[int]], where: str) -> None:
    """Refuse a ``model.mask_length`` that the shortest utterance the trainer keeps (``sizes``: sample
    counts per split) cannot take: fairseq's ``compute_mask_indices`` raises "the entire sequence
    is masked" at the first batch with such an utterance once a span reaches its length less 2
    frames (a batch is cropped to its shortest utterance, or to ``max_sample_size``)."""
    m, task = cfg.model, cfg.task
    if m.get("apply_mask") is False or not float(m.get("mask_prob") or 0) > 0:
        return
    length = int(m.get("mask_length") if m.get("mask_length") is not None else 10)
    if length < 1:
        raise AeHubertError(f"{where}: model.mask_length={length}: masked spans are at least 1 frame long")
    low, keep = task.get("min_sample_size") or 0, task.get("max_keep_size")
    crop = None if task.get("pad_audio") else task.get("max_sample_size")
    for split, ns in sizes.items():
        kept = [n for n in ns if n >= low and (keep is None or n <= keep)]
        if not kept:
            continue
        n = min(kept) if crop is None else min(min(kept), crop)
        try:
            frames = conv_frames(n, m.get("conv_feature_layers"))
        except (ValueError, SyntaxError, TypeError):
            return  # a spec the model build reads otherwise: its own check says what is wrong
        if length > frames - 3:
            cropped = crop is not None and n == crop and crop < min(kept)
            raise AeHubertError(f"{where}: model.mask_length={length} frames is too long for the shortest {split} "
                                f"utterance the trainer keeps ({n} samples"
                                f"{f' after cropping to task.max_sample_size={crop}' if cropped else ''}, {frames} "
                                f"frames): fairseq masks spans of at most its length less 3 ({max(frames - 3, 0)}); "
                                "shorten the spans" + (", or raise task.max_sample_size" if cropped else
                                                       " or drop short utterances (task.min_sample_size)"))


# settings a driven run must keep at fairseq's defaults, whichever file sets them: each loads other
# weights or state, acts only on a resume (which then differs from an uninterrupted run), or writes
# outside the run's own files; the driver sets what it needs of them itself
# (the weights-loading ones the schedule and the sweep name themselves, with the field to use instead)
RESUME_ONLY = {"checkpoint.reset_optimizer": False, "checkpoint.reset_dataloader": False,
               "checkpoint.reset_lr_scheduler": False, "checkpoint.reset_meters": False,
               "checkpoint.optimizer_overrides": "{}", "checkpoint.checkpoint_suffix": ""}
DRIVER_KEEPS = {"checkpoint.restore_file": "checkpoint_last.pt", "checkpoint.continue_once": None,
                "checkpoint.finetune_from_model": None, **RESUME_ONLY, "common.log_file": None}


def _strings(value) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [value] if isinstance(value, str) else []


# what a hydra path may name inside the run's own directory (hydra's own pattern for its log file)
IN_RUN_DIR = re.compile(r"^\$\{hydra[.:](runtime\.output_dir|run\.dir)\}/|\$\{hydra[.:]job\.name\}")


def check_driven_config(cfg, config_dir: str, config_name: str, where: str, overrides: list[str] = ()) -> None:
    """A composed config (before the driver's own settings) that would load another run's weights,
    change a resumed run, or write into another run's files (a log file, a tensorboard dir or a hydra
    run dir named in a config file rather than an override): refused, naming the setting."""
    import os

    from omegaconf import OmegaConf

    for key, default in DRIVER_KEEPS.items():
        value = OmegaConf.select(cfg, key, default=default)
        if value != default and not (default is None and value in ("", None)):
            raise AeHubertError(f"{where}: {key}: {value!r}; a driven run keeps fairseq's default ({default!r}): "
                                "it loads other weights or state, changes a resumed run, or writes elsewhere")
    tb = OmegaConf.select(cfg, "common.tensorboard_logdir", default=None)
    if tb and (os.path.isabs(str(tb)) or os.pardir in str(tb).split(os.sep)):
        raise AeHubertError(f"{where}: common.tensorboard_logdir: {tb}; give a path inside the run's directory")
    import yaml

    for name, path in _config_files(config_dir, config_name, tuple(overrides)):
        try:
            with open(path, encoding="utf-8") as f:
                doc = yaml.safe_load(f) or {}
            if name.startswith("hydra/"):  # a file of hydra's own groups (hydra/job_logging/mine.yaml): its package
                doc = {"hydra": {name.split("/")[1]: doc}}
            hydra = doc.get("hydra") or {}
        except (OSError, ValueError, AttributeError, yaml.YAMLError):
            continue
        for key, value in doc.items():  # read again on each resume: a resume could train on another value
            reads = next((v for v in _strings(value) if READS_OUTSIDE.search(v)), None)
            if key != "hydra" and reads:
                raise AeHubertError(f"{path}: {key}: {reads}: a value that reads the environment or the clock, "
                                    "which a resume reads again (and could train on another value under the same "
                                    "record); write the value itself")
        if not isinstance(hydra, dict):
            continue
        run_dir = (hydra.get("run") or {}).get("dir", ".") if isinstance(hydra.get("run"), dict) else "."
        outside = [f"hydra.run.dir: {run_dir}"] if str(run_dir) not in (".", "./") else []
        for key in ("output_subdir", "job_logging", "hydra_logging"):  # any path in them: inside the run's dir
            outside += [f"hydra.{key}: {p}" for p in _strings(hydra.get(key)) if os.sep in p and
                        (os.path.isabs(p) or os.pardir in p.split(os.sep) or "${" in IN_RUN_DIR.sub("", p))]
        job = hydra.get("job") if isinstance(hydra.get("job"), dict) else {}
        if job.get("name") is not None and (os.sep in str(job["name"]) or str(job["name"]).startswith(".")):
            outside.append(f"hydra.job.name: {job['name']}")  # it names the run's log file
        if outside:
            raise AeHubertError(f"{path}: {outside[0]}: where each run writes (its directory, logs) is set by the "
                                "driver (hydra.run.dir: ., the run's own directory); remove it from the config")


def check_training_numbers(cfg, where: str) -> None:
    """Numbers the trainer would take without complaint and train wrongly with (or fail on after the
    work before it): model probabilities outside [0, 1], a learning rate <= 0, max_update < 1."""
    for name, value in cfg.model.items():
        if (name.endswith("_prob") or "dropout" in name or name.endswith("layerdrop")) and \
                isinstance(value, (int, float)) and not isinstance(value, bool) and not 0 <= value <= 1:
            raise AeHubertError(f"{where}: model.{name}: {value} is not a probability in [0, 1]")
    lrs = cfg.optimization.get("lr")
    for lr in [] if lrs is None else [lrs] if isinstance(lrs, (int, float)) else list(lrs):
        if not float(lr) > 0:
            raise AeHubertError(f"{where}: optimization.lr: {lr} is not a positive learning rate")
    if int(cfg.optimization.max_update) < 1:
        raise AeHubertError(f"{where}: optimization.max_update: {cfg.optimization.max_update}; give at least 1")


def check_lr_schedule(cfg, where: str) -> None:
    """Refuse a learning-rate schedule fairseq would refuse at its first update: tri_stage's phases
    given as ratios of ``max_update`` that all round down to 0 updates (a one-update run), or ratios
    that do not add up to 1."""
    sched = cfg.get("lr_scheduler") or {}
    if sched.get("_name") != "tri_stage" or sched.get("phase_ratio") is None:
        return
    ratios = [float(r) for r in sched.phase_ratio]
    max_update = int(cfg.optimization.max_update)
    if abs(sum(ratios) - 1) > 1e-9:
        raise AeHubertError(f"{where}: lr_scheduler.phase_ratio {ratios} must add up to 1")
    if sum(int(max_update * r) for r in ratios) == 0:
        least = next(m for m in range(1, 10 ** 6) if sum(int(m * r) for r in ratios) > 0)
        raise AeHubertError(f"{where}: optimization.max_update={max_update} is too few for lr_scheduler tri_stage "
                            f"with phase_ratio {ratios}: every phase rounds to 0 updates (use max_update >= {least})")


_FOUND: dict = {}  # _config_files' answers in this process, with the state of the files they name


def _stamps(files: list[tuple[str, str]]) -> tuple:
    import os

    out = []
    for _, path in files:
        try:
            st = os.stat(path)
            out.append((path, st.st_mtime_ns, st.st_size, st.st_ino))
        except OSError:
            out.append((path, None))
    return tuple(out)


def _config_files(config_dir: str, config_name: str, overrides: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """(name, path) of each file hydra composes a training config from, the config itself first: the
    files its ``defaults`` lists pull in, as hydra resolves them (group-relative entries, ``override``
    entries and group overrides, ``hydra.searchpath``); fairseq's dataclass defaults come with the
    code. Only the config itself when composition fails (composition, run first, says why)."""
    import os

    primary = os.path.join(config_dir, config_name + ".yaml")
    if not os.path.isfile(primary):
        return []
    files = [(config_name + ".yaml", primary)]
    if not _pulls_in_files(primary, overrides):
        return files  # (hydra's set-up costs a third of a second a call, and a study resume makes hundreds)
    key = (config_dir, config_name, tuple(o for o in _plain_overrides(overrides) if "." not in o.split("=", 1)[0]))
    if key in _FOUND and _stamps(_FOUND[key][0]) == _FOUND[key][1]:  # the same files, none edited since
        return _FOUND[key][0]
    try:
        from hydra._internal.defaults_list import create_defaults_list
        from hydra.core.global_hydra import GlobalHydra

        with _hydra_for(config_dir, config_name):
            loader = GlobalHydra.instance().config_loader()
            parsed, repo = loader._parse_overrides_and_create_caching_repo(config_name, _plain_overrides(overrides))
            found = create_defaults_list(repo=repo, config_name=config_name, overrides_list=parsed,
                                         prepend_hydra=True, skip_missing=False)
            for d in found.defaults:
                if not d.config_path:
                    continue
                source = repo.load_config(d.config_path)
                if source is None or not str(source.path).startswith("file://"):  # hydra's and fairseq's own
                    continue
                path = os.path.join(str(source.path)[len("file://"):], d.config_path + ".yaml")
                if os.path.isfile(path) and not os.path.samefile(path, primary):
                    files.append((d.config_path + ".yaml", path))
    except (ImportError, AttributeError, TypeError):  # hydra's internals moved: say so, do not digest less
        raise
    except Exception:  # noqa: BLE001 - hydra's many composition errors: the composition run first names them
        return files[:1]
    _FOUND[key] = (files, _stamps(files))
    return files


def _pulls_in_files(config: str, overrides) -> bool:
    """Whether composing ``config`` may read other files: it has a defaults list, or an override
    picks a config group (``group=name``, ``+group=name``: a key without a dot)."""
    import yaml

    try:
        with open(config, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
    except (OSError, ValueError, yaml.YAMLError):
        return True
    picks_group = any("." not in o.split("=", 1)[0] for o in _plain_overrides(overrides) if "=" in o)
    return not isinstance(doc, dict) or "defaults" in doc or picks_group


def _digest(files: list[tuple[str, str]]) -> str:
    import hashlib

    h = hashlib.sha1()
    try:
        for i, (name, path) in enumerate(files):
            with open(path, "rb") as f:  # named as hydra names it: a moved config dir is the same config
                h.update((b"\0" + name.encode() + b"\0" if i else b"") + f.read())
    except OSError:
        return ""
    return h.hexdigest()[:12] if files else ""


def config_digest(config_dir: str, config_name: str, overrides: tuple[str, ...] = ()) -> str:
    """A training config by content: its file and the files hydra pulls in for it (an edited YAML is
    other settings under the same command; a file without a defaults list has the digest of its
    bytes alone); empty when it cannot be read (composition, run first, says why)."""
    return _digest(_config_files(config_dir, config_name, overrides))


def with_config_digest(plain: str, train_args: list[str],
                       earlier: tuple[str, ...] = ()) -> tuple[str, tuple[str, ...]]:
    """(a training command as a stage records it: with its config's digest, the forms recorded
    before the digest was: ``earlier``, the plain command, and the digest of the config file alone,
    which versions before the defaults lists were followed recorded). ``train_args`` as
    ``runner.trainer.train_args`` makes them."""
    config_dir, config_name, overrides = split_train_args(train_args)
    files = _config_files(config_dir, config_name, tuple(overrides))
    digest = _digest(files)
    if not digest:
        return plain, earlier
    alone = _digest(files[:1]) if len(files) > 1 else ""
    return f"{plain}  # config-sha1={digest}", (plain, *earlier, *((f"{plain}  # config-sha1={alone}",) if alone
                                                                  else ()))


def check_config_unchanged(now: str, checked: str, step: str) -> None:
    """A training step about to start whose config (or a file it pulls in) was edited while the
    driver ran: every check ran on the config as it was at the start, so the step is refused."""
    if now != checked:
        raise AeHubertError(f"{step}: its training config (or a file it pulls in) changed while this run went on, "
                            "after the checks ran on it: undo the edit and rerun to go on, or rerun with --restart "
                            "of the first step to train under the edited config")
