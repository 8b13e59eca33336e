"""``ae-hubert report W``: one self-contained HTML page for any work dir (iterate, demo, probe,
reset-sweep), images embedded, so a run can be read (or mailed) in one place.

It collects what the tools wrote, wherever it lies under ``W``: every ``records.json`` (schedule
records and label quality per iteration), ``probe.json`` with the plots beside it, ``sweep.json``
with ``wer_vs_k.png``, and the step times of every ``.stages`` directory. The page is a jinja2
template (``templates/report.html.j2``); nothing is fetched when it is opened.
"""
from __future__ import annotations

import base64
import json
import os
import time

from ..common.atomic import remove_output, write_text_atomic
from ..common.errors import AeHubertError, located
from ..common.lock import MARKER_DIR

TEMPLATE = "report.html.j2"
SKIP_DIRS = {"wav", "checkpoints", "labels", "outputs", MARKER_DIR}


def _load(path: str):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise located(path, f"unreadable JSON ({e})") from None


def _fmt(v, digits=3):
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return "" if v is None else str(v)


def _image(path: str, root: str) -> dict:
    with open(path, "rb") as f:
        return {"name": os.path.basename(path), "path": os.path.relpath(path, root),
                "data": base64.b64encode(f.read()).decode("ascii")}


def _records_section(path: str, root: str) -> dict:
    records = _load(path)
    if not isinstance(records, list):
        raise located(path, "expected a list of iteration records")
    rows, quality = [], []
    try:  # a records.json that is not iterate's (a list of junk) is named, not a traceback
        for r in records:
            t = r["targets"][0]
            q = t["quality"].get("valid") or t["quality"].get("train") or {}
            src = "MFCC" if t["source"] == "mfcc" else f"layer {t['layer']}"
            rows.append([r["iteration"], f"{src} K={t['k']}" + (" +" if len(r["targets"]) > 1 else ""),
                         r["init"] + (f"-{r['reset_top_layers']}" if r.get("reset_top_layers") else ""),
                         _fmt(q.get("pnmi")), _fmt(q.get("phone_purity")), r["updates"],
                         _fmt(r.get("valid", {}).get("loss")), _fmt(r.get("valid", {}).get("correct_m_0")),
                         _fmt(r.get("sidecar_seconds"), 1), _fmt(r.get("train_seconds"), 1)])
            for t in r["targets"]:
                for split, q in t["quality"].items():
                    src = "MFCC" if t["source"] == "mfcc" else f"layer {t['layer']}"
                    quality.append([f"{r['iteration']}: {src} clusters ({t['name']})", t["k"], f"{t['rate']:g} Hz", split,
                                    _fmt(q["pnmi"]), _fmt(q["phone_purity"]), _fmt(q["cluster_purity"])])
        name = records[0]["schedule"] if records else os.path.basename(os.path.dirname(path))
    except (KeyError, TypeError, IndexError, AttributeError, ValueError) as e:
        raise located(path, f"not iteration records as iterate writes them ({type(e).__name__}: {e})") from None
    tables = [{"caption": "Iterations", "head": ["iteration", "targets", "init", "PNMI", "phone pur.", "updates",
                                                 "valid loss", "valid acc", "sidecar s", "train s"], "rows": rows}]
    if quality:
        tables.append({"caption": "Label quality against frame phone labels",
                       "head": ["targets", "K", "rate", "split", "PNMI", "phone purity", "cluster purity"],
                       "rows": quality})
    return {"title": f"Schedule {name}", "tables": tables, "images": [], "source": os.path.relpath(path, root)}


def _probe_section(path: str, root: str) -> dict:
    results = _load(path)
    if not isinstance(results, list):
        raise located(path, "expected a list of probe results")
    metrics = sorted({k for r in results for m in r["layers"].values() for k in m})
    rows = []
    for r in results:
        top = r["layers"][max(r["layers"], key=int)]
        rows.append([f"{r.get('run', '')}@{r.get('updates', '')}", _fmt(r.get("autoencoder_index")),
                     *[_fmt(top.get(m)) for m in metrics]])
    d = os.path.dirname(path)
    images = [_image(os.path.join(d, f), root) for f in sorted(os.listdir(d)) if f.endswith(".png")]
    return {"title": f"Layer probes: {os.path.relpath(d, root)}",
            "note": "Top layer's scores per checkpoint; every layer is in the heatmaps and curves.",
            "tables": [{"caption": "", "head": ["checkpoint", "AE index", *[f"top {m}" for m in metrics]],
                        "rows": rows}], "images": images, "source": os.path.relpath(path, root)}


def _sweep_section(path: str, root: str) -> dict:
    rows = _load(path)
    if not isinstance(rows, list):
        raise located(path, "expected a list of sweep rows")
    splits = [k for k in (rows[0] if rows else {}) if k not in ("k", "mode", "train")]
    table = [[r["k"], r["mode"], *[f"{100 * r[s]['wer']:.1f}%" for s in splits],
              *[f"{100 * r[s]['cer']:.1f}%" for s in splits]] for r in rows]
    d = os.path.dirname(path)
    png = os.path.join(d, "wer_vs_k.png")
    return {"title": f"Reset sweep: {os.path.relpath(d, root)}",
            "tables": [{"caption": "", "head": ["k reset", "mode", *[f"{s} WER" for s in splits],
                                                *[f"{s} CER" for s in splits]], "rows": table}],
            "images": [_image(png, root)] if os.path.isfile(png) else [], "source": os.path.relpath(path, root)}


def _times_section(stage_dirs: list[str], root: str) -> dict:
    rows = []
    for d in stage_dirs:
        for f in sorted(os.listdir(d)):
            if f.endswith(".json"):
                rec = _load(os.path.join(d, f))
                rows.append([os.path.relpath(os.path.join(os.path.dirname(d), f[:-5]), root),
                             _fmt(float(rec.get("seconds", 0.0)), 1)])
    total = sum(float(r[1]) for r in rows)
    return {"title": "Run times", "note": f"{len(rows)} steps, {total:.0f} s in all (the last run of each step).",
            "tables": [{"caption": "", "head": ["step", "seconds"], "rows": rows}], "images": []}


def withdraw_report(work_dir: str) -> None:
    """Remove ``W/report.html`` when a driver forgets steps whose figures it showed (a ``--restart``,
    before it removes their checkpoints): no page outlives the checkpoints it describes; the driver
    writes it again when its run ends. A directory of that name is refused, as the page's write would be."""
    remove_output(os.path.join(work_dir, "report.html"))


def build_report(work_dir: str, out: str | None = None) -> str:
    """Write ``W/report.html`` (or ``out``); returns its path."""
    import jinja2

    root = os.path.abspath(work_dir)
    if not os.path.isdir(root):
        raise located(root, "work dir not found")
    found = {"records.json": [], "probe.json": [], "sweep.json": []}
    stage_dirs = []
    for d, dirs, files in os.walk(root):
        if os.path.basename(d) == MARKER_DIR:
            stage_dirs.append(d)
        dirs[:] = sorted(x for x in dirs if x not in SKIP_DIRS - {MARKER_DIR} and not x.startswith("feat_"))
        for name in found:
            if name in files:
                found[name].append(os.path.join(d, name))
    sections = [_records_section(p, root) for p in sorted(found["records.json"])]
    sections += [_probe_section(p, root) for p in sorted(found["probe.json"])]
    sections += [_sweep_section(p, root) for p in sorted(found["sweep.json"])]
    if stage_dirs:
        sections.append(_times_section(sorted(stage_dirs), root))
    if not sections:
        raise AeHubertError(f"{root}: nothing to report (no records.json, probe.json, sweep.json or .stages)")
    for i, s in enumerate(sections):
        s["id"] = f"s{i}"
        s.setdefault("note", "")
        s.setdefault("source", "")
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(os.path.join(os.path.dirname(__file__), "templates")),
                             autoescape=True, undefined=jinja2.StrictUndefined)
    html = env.get_template(TEMPLATE).render(title=os.path.basename(root), work_dir=root, sections=sections,
                                             written=time.strftime("%Y-%m-%d %H:%M"))
    out = out or os.path.join(root, "report.html")
    write_text_atomic(out, html)
    return out
