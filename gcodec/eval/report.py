"""Reports from ``results.jsonl``: summary JSON (CompressAI shape), tables, plots, crops grid, HTML, README.

The summary follows CompressAI's ``eval_model`` output, one object per codec::

    {"name": "heic", "description": "...",
     "results": {"bpp": [...], "psnr-rgb": [...], "ms-ssim-rgb": [...],
                 "encoding_time": [...], "decoding_time": [...], ...extra metrics}}

with one list entry per rate point (a gcz model, or a peer matched to one gcz
model at ``same`` or ``double`` its bytes), each the mean over images.  Peer
rows that missed their byte target are left out of the means and counted in
``n_unreached``; a point none of whose rows reached its target has ``null``
metrics.
"""
from __future__ import annotations

import html
import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import metrics
from .runner import RESULTS_NAME, RUN_NAME, read_rows

SUMMARY_NAME = "summary.json"
#: (summary key, axis label) of the quality metrics plotted against bpp.
PLOT_METRICS = (("psnr-rgb", "PSNR RGB (dB)"), ("ms-ssim-rgb", "MS-SSIM RGB"), ("ssimulacra2", "SSIMULACRA2"),
                ("kid", "KID"))
#: Keys every summary ``results`` object has (CompressAI's plus ours).
RESULT_KEYS = ("bpp", "psnr-rgb", "ms-ssim-rgb", "encoding_time", "decoding_time", "ssimulacra2", "kid", "fid",
               "point", "reference", "match", "n_images", "n_unreached", "closest_bpp", "closest_psnr-rgb",
               "closest_ms-ssim-rgb", "closest_ssimulacra2", "closest_kid", "grid")


@dataclass
class Report:
    """Paths of everything :func:`build_report` wrote, and the summary itself."""

    summary: dict[str, Any]
    files: dict[str, Path]


def _mean(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def _median_grid(rows: list[dict[str, Any]]) -> list[float] | None:
    """Median over images of the grid ratio at each period (rows measured before the grid have none)."""
    grids = [r["grid"] for r in rows if r.get("grid")]
    return [float(v) for v in np.median(np.array(grids), axis=0)] if grids else None


def _distribution(out: Path, rows: list[dict[str, Any]], originals: dict[str, str | None]) -> tuple[
        float | None, float | None]:
    """KID and FID of the reconstructions' patch features against the same images' originals."""
    recon, orig = [], []
    for r in rows:
        o = originals.get(r["image"])
        if r.get("features") and o and (out / r["features"]).is_file() and (out / o).is_file():
            recon.append(np.load(out / r["features"]).astype(np.float32))
            orig.append(np.load(out / o).astype(np.float32))
    if not recon:
        return None, None
    x, y = np.concatenate(orig), np.concatenate(recon)
    if len(x) < 2 or len(y) < 2:
        return None, None
    return metrics.kid(x, y), metrics.fid(x, y)


def summarize(out: Path, rows: list[dict[str, Any]], run: dict[str, Any] | None = None) -> dict[str, Any]:
    """The summary document of a results folder (see the module docstring)."""
    run = run or {}
    originals = {}
    for r in rows:
        originals.setdefault(r["image"], f"features/{_safe(r['image'] + '|original')}.npy")
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    labels: dict[str, str] = {}
    for r in rows:
        family = "gcz" if r["codec"] == r["reference"] else r["codec"]
        groups[(family, r["reference"], r["match"])].append(r)
        labels[family] = "gcz (this project)" if family == "gcz" else r.get("label", family)
    codecs: dict[str, dict[str, Any]] = {}
    for (family, ref, match), group in sorted(groups.items()):
        ok = [r for r in group if r.get("reached", True)]
        quality = _quality(out, ok, originals)
        point = {
            **quality,
            "encoding_time": _mean([r["encoding_time"] for r in ok]),
            "decoding_time": _mean([r["decoding_time"] for r in ok]),
            "point": ref if family == "gcz" else f"{match} as {ref}", "reference": ref, "match": match,
            "n_images": len(ok), "n_unreached": len(group) - len(ok),
            # the same over every row, targets missed or not: where a peer bottoms out
            "closest_bpp": _mean([r["bpp"] for r in group]),
            "closest_psnr-rgb": _mean([r.get("psnr") for r in group]),
            "closest_ms-ssim-rgb": _mean([r.get("ms_ssim") for r in group]),
            "closest_ssimulacra2": _mean([r.get("ssimulacra2") for r in group]),
            "closest_kid": quality["kid"] if len(ok) == len(group) else _distribution(out, group, originals)[0],
        }
        entry = codecs.setdefault(family, {"name": family, "description": labels[family],
                                           "results": {k: [] for k in RESULT_KEYS}})
        for k in RESULT_KEYS:
            entry["results"][k].append(point[k])
    for entry in codecs.values():  # points sorted by rate, as CompressAI's curves are
        res = entry["results"]
        order = sorted(range(len(res["bpp"])), key=lambda i: (res["closest_bpp"][i] or 0, res["match"][i]))
        for k in RESULT_KEYS:
            res[k] = [res[k][i] for i in order]
    order = ["gcz"] + sorted(k for k in codecs if k != "gcz")
    paired = _paired(out, groups, originals)
    return {
        "feature_network": run.get("feature_network"), "patch": run.get("patch"),
        "tolerance": run.get("tolerance"), "images": sorted({r["image"] for r in rows}),
        "notes": run.get("notes", []), "command": run.get("command"),
        "codecs": [codecs[k] for k in order if k in codecs],
        "paired": paired,
    }


def _quality(out: Path, rows: list[dict[str, Any]], originals: dict[str, str | None]) -> dict[str, Any]:
    """Mean bpp and quality of ``rows``, and their KID and FID against the same images' originals."""
    kid_v, fid_v = _distribution(out, rows, originals)
    return {"bpp": _mean([r["bpp"] for r in rows]), "psnr-rgb": _mean([r.get("psnr") for r in rows]),
            "ms-ssim-rgb": _mean([r.get("ms_ssim") for r in rows]),
            "ssimulacra2": _mean([r.get("ssimulacra2") for r in rows]), "kid": kid_v, "fid": fid_v,
            "grid": _median_grid(rows)}


def _paired(out: Path, groups: dict[tuple[str, str, str], list[dict[str, Any]]],
            originals: dict[str, str | None]) -> list[dict[str, Any]]:
    """Head-to-head entries: each peer point against its gcz model on exactly the images where the peer
    reached its byte target, so that both sides' means (and KID) cover the same photos."""
    entries = []
    for (family, ref, match), group in sorted(groups.items()):
        if family == "gcz":
            continue
        reached = {r["image"] for r in group if r.get("reached", True)}
        gcz_rows = [r for r in groups.get(("gcz", ref, "-"), []) if r["image"] in reached]
        both = {r["image"] for r in gcz_rows}
        peer_rows = [r for r in group if r.get("reached", True) and r["image"] in both]
        if not peer_rows:
            continue
        entries.append({"peer": family, "point": f"{match} as {ref}", "reference": ref, "match": match,
                        "n_images": len(peer_rows), "gcz": _quality(out, gcz_rows, originals),
                        "peer_metrics": _quality(out, peer_rows, originals)})
    return sorted(entries, key=lambda e: (e["reference"], e["peer"], e["match"] != "same"))


def _safe(text: str) -> str:
    from .runner import safe_name
    return safe_name(text)


def _fmt(value: float | None, digits: int) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _fmt_grid(values: list[float] | None) -> str:
    return "–" if not values else ", ".join(f"{v:.2f}" for v in values)


def table_rows(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the summary table (strings), shared by rich, markdown and HTML."""
    net = summary.get("feature_network")
    kid_head = f"KID×10³ ({net}, {summary.get('patch')} px)" if net else "KID×10³"
    header = ["codec", "point", "bpp", "PSNR", "MS-SSIM", "SSIMULACRA2", kid_head, "FID", "grid at 2, 4, 8, 16 px",
              "enc s", "dec s", "reached"]
    rows = []
    for entry in summary["codecs"]:
        res = entry["results"]
        for i in range(len(res["bpp"])):
            n, miss = res["n_images"][i], res["n_unreached"][i]
            if n == 0:
                rows.append([entry["name"], res["point"][i], f"not reached (closest {_fmt(res['closest_bpp'][i], 4)})",
                             *["–"] * 8, f"0/{miss}"])
                continue
            kid_v = res["kid"][i]
            rows.append([entry["name"], res["point"][i], _fmt(res["bpp"][i], 4), _fmt(res["psnr-rgb"][i], 2),
                         _fmt(res["ms-ssim-rgb"][i], 4), _fmt(res["ssimulacra2"][i], 1),
                         _fmt(None if kid_v is None else kid_v * 1e3, 2), _fmt(res["fid"][i], 1),
                         _fmt_grid(res["grid"][i]), _fmt(res["encoding_time"][i], 3),
                         _fmt(res["decoding_time"][i], 3), f"{n}/{n + miss}"])
    return header, rows


def rich_table(summary: dict[str, Any]) -> Any:
    """The summary as a :class:`rich.table.Table`."""
    from rich.table import Table

    header, rows = table_rows(summary)
    table = Table(title=f"gcz eval: {len(summary['images'])} images"
                        + (f"; KID/FID on {summary['feature_network']} features" if summary["feature_network"] else ""))
    for h in header:
        table.add_column(h, justify="left" if h in ("codec", "point") else "right")
    for r in rows:
        table.add_row(*r)
    return table


def paired_rows(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the head-to-head table (gcz vs each peer point on the images where the peer
    reached its target), shared by markdown and HTML."""
    header = ["gcz model", "peer", "point", "images", "bpp gcz / peer", "PSNR gcz / peer",
              "SSIMULACRA2 gcz / peer", "KID×10³ gcz / peer", "grid gcz / peer"]
    rows = []
    for e in summary.get("paired", []):
        g, p = e["gcz"], e["peer_metrics"]
        kid_g = None if g["kid"] is None else g["kid"] * 1e3
        kid_p = None if p["kid"] is None else p["kid"] * 1e3
        rows.append([e["reference"], e["peer"], e["match"], str(e["n_images"]),
                     f"{_fmt(g['bpp'], 4)} / {_fmt(p['bpp'], 4)}", f"{_fmt(g['psnr-rgb'], 2)} / {_fmt(p['psnr-rgb'], 2)}",
                     f"{_fmt(g['ssimulacra2'], 1)} / {_fmt(p['ssimulacra2'], 1)}", f"{_fmt(kid_g, 1)} / {_fmt(kid_p, 1)}",
                     f"{_fmt_grid(g['grid'])} / {_fmt_grid(p['grid'])}"])
    return header, rows


def _markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def markdown_table(summary: dict[str, Any]) -> str:
    """The summary table in GitHub markdown."""
    return _markdown(*table_rows(summary))


def paired_markdown(summary: dict[str, Any]) -> str:
    """The head-to-head table in GitHub markdown."""
    return _markdown(*paired_rows(summary))


def _plot_lines(ax: Any, summary: dict[str, Any], key: str, label: str) -> bool:
    """One line per codec through its points reached on every image; hollow markers where a peer missed
    its target on some image (placed at its actual mean size and quality over all images)."""
    import matplotlib.pyplot as plt

    drawn = False
    scale = 1e3 if key == "kid" else 1.0
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, entry in enumerate(summary["codecs"]):
        res = entry["results"]
        gcz = entry["name"] == "gcz"
        colour = "black" if gcz else colours[i % len(colours)]
        # a curve joins only points reached on every image (same image set); the others are hollow, at
        # the peer's actual sizes and quality over all images
        pts = [(b, v * scale) for miss, b, v in zip(res["n_unreached"], res["bpp"], res[key])
               if miss == 0 and b is not None and v is not None]
        missed = [(b, v * scale) for miss, b, v in zip(res["n_unreached"], res["closest_bpp"],
                                                        res[f"closest_{key}"])
                  if miss > 0 and b is not None and v is not None]
        if pts:
            xs, ys = zip(*sorted(pts))
            ax.plot(xs, ys, label=entry["name"], color=colour, marker="o", linewidth=2.5 if gcz else 1.2,
                    markersize=6 if gcz else 4)
            drawn = True
        if missed:
            xs, ys = zip(*sorted(missed))
            ax.plot(xs, ys, linestyle="none", marker="o", markerfacecolor="none", color=colour,
                    label=None if pts else f"{entry['name']} (target missed)")
            drawn = True
    ax.set_xlabel("bpp (real file sizes)")
    ax.set_ylabel(label)
    ax.grid(alpha=0.3)
    return drawn


def plot(summary: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    """Rate-quality plots (bpp vs each metric, one line per codec): one PNG per metric and a 2x2 overview."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    net = summary.get("feature_network")
    labels = dict(PLOT_METRICS)
    labels["kid"] = f"KID×10³ ({net}, {summary.get('patch')} px)" if net else "KID×10³"
    files: dict[str, Path] = {}
    for key, _ in PLOT_METRICS:
        fig, ax = plt.subplots(figsize=(6, 4.2))
        if _plot_lines(ax, summary, key, labels[key]):
            ax.legend(fontsize=8)
        ax.set_title(f"{labels[key]} vs rate")
        fig.tight_layout()
        path = out_dir / f"plot_{key.replace('-', '_')}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        files[f"plot_{key}"] = path
    fig, axes = plt.subplots(2, 2, figsize=(11, 8.5))
    for ax, (key, _) in zip(axes.flat, PLOT_METRICS):
        _plot_lines(ax, summary, key, labels[key])
    handles, names = axes.flat[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, names, loc="lower center", ncol=min(7, len(names)), fontsize=9, frameon=False)
    title = (f"Rate–quality on {len(summary['images'])} images; hollow: peer missed its byte target on some "
             "image (shown at its actual sizes)")
    if net:
        title += f"\nKID on {net} features of {summary.get('patch')} px patches (lower is better)"
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.05, 1, 0.95))
    path = out_dir / "rate_quality.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    files["rate_quality"] = path
    return files


def crops_grid(out: Path, rows: list[dict[str, Any]], max_images: int = 4) -> Path | None:
    """Side-by-side crops: per image, the original, every gcz model and every peer at ``same`` (and, where
    measured, ``double``) the bytes of the middle gcz model, each labelled with codec and bpp."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    refs = sorted({r["reference"] for r in rows}, key=lambda s: (len(s), s))
    if not refs:
        return None
    mid = refs[len(refs) // 2]
    images = sorted({r["image"] for r in rows})[:max_images]
    columns: list[tuple[str, Any]] = [("original", None)]
    columns += [(ref, (ref, ref, "-")) for ref in refs]
    peers_ = sorted({r["codec"] for r in rows if r["codec"] != r["reference"]})
    for p in peers_:
        columns += [(f"{p} ({'=' if m == 'same' else '2×'} {mid})", (p, mid, m)) for m in ("same", "double")
                    if any(r["codec"] == p and r["reference"] == mid and r["match"] == m for r in rows)]
    by_key = {(r["image"], r["codec"], r["reference"], r["match"]): r for r in rows}
    fig, axes = plt.subplots(len(images), len(columns), figsize=(2.3 * len(columns), 2.5 * len(images)),
                             squeeze=False)
    for i, image in enumerate(images):
        for j, (title, key) in enumerate(columns):
            ax = axes[i][j]
            ax.set_xticks([])
            ax.set_yticks([])
            if key is None:
                path = out / "crops" / _safe(image) / "original.png"
                caption = f"{image[:22]}\noriginal"
            else:
                row = by_key.get((image, *key))
                path = out / row["crop"] if row and row.get("crop") else None
                caption = title if row is None else \
                    f"{title}\n{row['bpp']:.4f} bpp" + ("" if row.get("reached", True) else " (missed)")
            if path is not None and path.is_file():
                ax.imshow(np.asarray(Image.open(path).convert("RGB")), interpolation="nearest")
            else:
                ax.text(0.5, 0.5, "n/a", ha="center", va="center")
            ax.set_title(caption, fontsize=7)
    fig.tight_layout()
    path = out / "crops_grid.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def readme_section(summary: dict[str, Any], plot_path: str, command: str | None = None) -> str:
    """The README's "How it compares" section: table, plot and the command that reproduces them."""
    net = summary.get("feature_network")
    lines = [
        "## How it compares", "",
        f"gcz against engineered codecs on {len(summary['images'])} photos. Every peer is encoded per "
        "image at the setting whose real file size is closest to gcz's bytes for that image (`same`) or twice "
        f"them (`double`); a peer that cannot get within ±{round(100 * (summary.get('tolerance') or 0.05))}% "
        "of the target is reported as not reached, not substituted: table means are over the images "
        "where the target was reached (column *reached*), and in the plot a point missed on any image is "
        "hollow, drawn at the peer's actual sizes. bpp counts whole files (headers included).",
        "",
        markdown_table(summary), "",
        f"![rate–quality curves]({plot_path})", "",
    ]
    if summary.get("paired"):
        lines += ["Head to head: each peer point against its gcz model on exactly the images where the peer "
                  "reached its byte target (the table above averages gcz over all images, the peers over "
                  "the reached ones; KID on few images is noisy).", "", paired_markdown(summary), ""]
    if net:
        lines += [f"KID and FID are computed on {summary.get('patch')} px patches with **{net}** ImageNet "
                  "features (not Inception: the numbers are not comparable with published FIDs; the training "
                  "loss uses EfficientNet-Lite0, a different network). With fewer patches than feature dimensions FID "
                  "is only indicative; KID is the one to read.", ""]
    if summary.get("notes"):
        lines += ["Notes: " + "; ".join(summary["notes"]), ""]
    if command:
        lines += ["Reproduce with:", "", "```sh", command, "```", ""]
    return "\n".join(lines)


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    esc = html.escape
    return "<table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>" + "".join(
        "<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in rows) + "</table>"


def _html_page(summary: dict[str, Any], files: dict[str, Path], out: Path) -> str:
    esc = html.escape
    table = _html_table(*table_rows(summary))
    imgs = "".join(f'<figure><img src="{esc(p.relative_to(out).as_posix())}"><figcaption>{esc(p.name)}'
                   f"</figcaption></figure>" for k, p in files.items() if p.suffix == ".png")
    notes = "".join(f"<li>{esc(n)}</li>" for n in summary.get("notes", []))
    net = summary.get("feature_network")
    paired_header, paired_body = paired_rows(summary)
    paired = "" if not paired_body else (
        "<h2>Head to head</h2><p>Each peer point against its gcz model on exactly the images where the peer "
        "reached its byte target.</p>" + _html_table(paired_header, paired_body))
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>gcz eval</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 7px;text-align:right}} td:first-child,td:nth-child(2){{text-align:left}}
img{{max-width:100%}} figure{{margin:1em 0}}</style></head><body>
<h1>gcz eval</h1>
<p>{len(summary['images'])} images: {esc(', '.join(summary['images']))}.
KID/FID feature network: <b>{esc(net or 'none (not computed)')}</b>, {summary.get('patch')} px patches.
Peers matched to gcz's bytes per image (±{round(100 * (summary.get('tolerance') or 0.05))}%).</p>
{f'<p>Command: <code>{esc(summary["command"])}</code></p>' if summary.get('command') else ''}
{f'<h2>Notes</h2><ul>{notes}</ul>' if notes else ''}
<h2>Summary</h2>{table}
{paired}
<p><a href="{SUMMARY_NAME}">summary.json</a> · <a href="{RESULTS_NAME}">results.jsonl</a> ·
<a href="README_section.md">README section</a></p>
<h2>Plots and crops</h2>{imgs}
</body></html>
"""


def build_report(out: Path, command: str | None = None) -> Report:
    """Write summary.json, summary/<codec>.json, plots, crops grid, README_section.md and index.html."""
    rows = read_rows(out / RESULTS_NAME)
    run = json.loads((out / RUN_NAME).read_text()) if (out / RUN_NAME).is_file() else {}
    if command:
        run["command"] = command
    summary = summarize(out, rows, run)
    files: dict[str, Path] = {}
    (out / SUMMARY_NAME).write_text(json.dumps(summary, indent=2) + "\n")
    files["summary"] = out / SUMMARY_NAME
    per_codec = out / "summary"
    per_codec.mkdir(exist_ok=True)
    for entry in summary["codecs"]:
        path = per_codec / f"{entry['name']}.json"
        path.write_text(json.dumps(entry, indent=2) + "\n")
        files[f"summary_{entry['name']}"] = path
    if rows:
        files.update(plot(summary, out))
        grid = crops_grid(out, rows)
        if grid is not None:
            files["crops_grid"] = grid
    readme = out / "README_section.md"
    readme.write_text(readme_section(summary, "rate_quality.png", summary.get("command")))
    files["readme_section"] = readme
    index = out / "index.html"
    index.write_text(_html_page(summary, files, out))
    files["index"] = index
    return Report(summary=summary, files=files)
