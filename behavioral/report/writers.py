"""Every file the report writes, through :mod:`behavioral.files` (atomic files, directories
built next to their place and renamed into it): nothing is ever left half-written.

* :func:`write_report` -- one audit: ``report.html``, ``report.md`` and the PNGs
  (:meth:`behavioral.auditing.Audit.save` adds ``summary.json``);
* :func:`write_comparison_report` -- one policy's audits on several splits side by side;
* :func:`write_demo_index` -- the demo's ``index.html`` and ``index.md``;
* :func:`save_png` -- one figure.

:func:`report_html` renders the same report as an HTML fragment, for Jupyter.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from matplotlib.figure import Figure

from behavioral import files
from behavioral.report import pages, views
from behavioral.report.figures import audit_figures, comparison_figure, level_figure, levels_to_show
from behavioral.report.plots import DPI

if TYPE_CHECKING:
    from behavioral.auditing import Audit

__all__ = [
    "png_bytes",
    "render",
    "report_html",
    "save_png",
    "write_comparison_report",
    "write_demo_index",
    "write_report",
]

_GLANCE_CAPTION = (
    "At a glance: what the policy achieves on each objective per split (left), and how "
    "much better each proxy explains its behaviour than the base objective (right; "
    "log-likelihood per episode, bootstrap CI). Pseudo-alignment: the advantage is 0 "
    "where proxy and base coincide, and positive where they come apart."
)


def png_bytes(fig: Figure, dpi: int = DPI) -> bytes:
    """``fig`` as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def save_png(fig: Figure, path: str | os.PathLike[str], *, dpi: int = DPI) -> str:
    """Write ``fig`` as a PNG to ``path`` atomically; return the file name (for links)."""
    return files.write_atomic(path, png_bytes(fig, dpi)).name


def render(audit: Audit, max_levels: int) -> tuple[dict[str, bytes], dict[str, str]]:
    """Every figure of the report as PNG bytes, and their captions."""
    figs, captions = audit_figures(audit, max_levels=max_levels)
    return {name: png_bytes(fig) for name, fig in figs.items()}, captions


def write_report(audit: Audit, directory: str | os.PathLike[str], *, max_levels: int = 3) -> Path:
    """Write ``report.html``, ``report.md`` and the PNG figures of ``audit`` into
    ``directory`` (created if needed; files are replaced one by one, atomically).

    :meth:`behavioral.auditing.Audit.save` calls this inside the temporary directory it
    renames into place, so a saved report is never half-written.

    Args:
        audit: the audit.
        directory: where to write.
        max_levels: maps are drawn for this many levels (those with most episodes).

    Returns:
        The path of ``report.html``.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    images, captions = render(audit, max_levels)
    for name, data in images.items():
        files.write_atomic(out / name, data)
    files.write_atomic(out / "report.md", pages.report_markdown(audit, list(images), captions))
    return files.write_atomic(out / "report.html", pages.report_page(audit, images, captions))


def report_html(audit: Audit, *, max_levels: int = 2) -> str:
    """The report as an HTML fragment with embedded images (for ``Audit._repr_html_``);
    its styles apply only inside its own container."""
    images, captions = render(audit, max_levels)
    return pages.report_fragment(audit, images, captions)


def _label(audit: Audit, i: int) -> str:
    return views.run_view(audit).split or f"audit {i + 1}"


def _comparison_files(
    audits: Sequence[Audit],
    labels: Sequence[str],
    links: Sequence[str | None] | None,
    title: str,
) -> dict[str, bytes]:
    """File name -> content of a comparison report."""
    images = {"glance.png": png_bytes(comparison_figure(audits, labels))}
    captions = {"glance.png": _GLANCE_CAPTION}
    for i, a in enumerate(audits):
        shown = levels_to_show(a, 1)
        if shown:
            name = f"split{i}_level{shown[0]}.png"
            fig, count = level_figure(a, shown[0])
            images[name] = png_bytes(fig)
            captions[name] = (
                f"{labels[i]}, level {shown[0]} ({count}): the level with trajectories, the "
                "data's coverage, the objectives, the recovered reward and what it does "
                "beyond the base objective."
            )
    run = views.run_view(audits[0])
    summary = {
        "title": title,
        "policy": run.policy_name,
        "env_id": run.env_id,
        "labels": list(labels),
        "audits": [
            {
                "label": lab,
                "split": views.run_view(a).split,
                "verdict": a.verdict,
                "proxy": a.proxy,
                "base": a.base,
                "proxies": list(a.proxies),
                "reason": a.reason,
            }
            for a, lab in zip(audits, labels)
        ],
    }
    out: dict[str, bytes] = dict(images)
    out["report.html"] = pages.comparison_page(
        audits, labels, images, captions, page_title=title, links=links
    ).encode("utf-8")
    out["report.md"] = pages.comparison_markdown(
        audits, labels, list(images), captions, page_title=title
    ).encode("utf-8")
    out["summary.json"] = files.dumps_json(summary).encode("utf-8")
    return out


def write_comparison_report(
    audits: Sequence[Audit],
    directory: str | os.PathLike[str],
    *,
    labels: Sequence[str] | None = None,
    overwrite: bool = False,
    links: Sequence[str | None] | None = None,
    title: str | None = None,
) -> Path:
    """One policy's audits on several splits (e.g. ``train`` and ``deploy``) side by side.

    Writes ``report.html`` (self-contained), ``report.md``, ``summary.json`` and the PNGs
    into ``directory``: a glance figure (each objective's return per split, each proxy's
    log-likelihood advantage over the base objective per split), every audit's verdict and
    reason, a table per split, and each audit's most visited level's maps. A
    pseudo-aligned policy shows as "indistinguishable" on ``train`` (the proxy's advantage
    is 0: the objectives coincide) and "proxy" on ``deploy``.

    Args:
        audits: two or more audits of the same policy.
        directory: the report directory (written next to its place and renamed into it).
        labels: a label per audit; default each audit's split.
        overwrite: replace an existing directory.
        links: optional relative link per audit to its full report (shown in the page).
        title: the page title; default "<policy name> on <env>: <label> vs <label>".

    Returns:
        The directory.

    Raises:
        OutputExistsError: ``directory`` exists and ``overwrite`` is False (also a
            ``FileExistsError``).
        ValueError: fewer than two audits, or labels or links of the wrong length.
    """
    audits = list(audits)
    if len(audits) < 2:
        raise ValueError(f"a comparison needs at least two audits, got {len(audits)}")
    labels = list(labels) if labels is not None else [_label(a, i) for i, a in enumerate(audits)]
    if len(labels) != len(audits):
        raise ValueError(f"{len(labels)} labels for {len(audits)} audits")
    if links is not None and len(links) != len(audits):
        raise ValueError(f"{len(links)} links for {len(audits)} audits")
    # the target is checked (and reserved) before the figures are drawn
    files.check_target(directory, kind="dir", overwrite=overwrite, expect=files.REPORT_FILES)
    content = _comparison_files(
        audits, labels, links, title or pages.comparison_title(audits, labels)
    )

    def fill(tmp: Path) -> None:
        for name, data in content.items():
            (tmp / name).write_bytes(data)

    return files.write_dir(directory, fill, overwrite=overwrite, expect=files.REPORT_FILES)


def write_demo_index(
    directory: str | os.PathLike[str],
    rows: Sequence[tuple[str, str, str, Audit]],
    descriptions: Mapping[str, str],
    *,
    episodes: int,
    seed: int,
    use_zoo: bool,
) -> Path:
    """Write the demo's ``index.html`` (self-contained: each policy's glance figure
    embedded) and ``index.md`` into ``directory``.

    Args:
        directory: the demo directory, holding ``<name>/<split>/`` reports and
            ``<name>/comparison/`` reports (whose ``glance.png`` the index embeds).
        rows: (policy name, env id, split, audit) of every audit, in order.
        descriptions: policy name -> one line about it.
        episodes, seed: the demo's settings.
        use_zoo: the policies are the trained zoo's (else tabular planners).

    Returns:
        The path of ``index.html``.
    """
    import behavioral

    out = Path(directory)
    glances = {}
    for name in dict.fromkeys(r[0] for r in rows):
        glance = out / name / "comparison" / "glance.png"
        if glance.is_file():
            glances[name] = glance.read_bytes()
    page, text = pages.demo_index(
        rows,
        descriptions,
        glances,
        episodes=episodes,
        seed=seed,
        use_zoo=use_zoo,
        version=behavioral.__version__,
    )
    files.write_atomic(out / "index.md", text)
    return files.write_atomic(out / "index.html", page)
