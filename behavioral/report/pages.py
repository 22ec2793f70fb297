"""Pages: an audit's report, one policy's splits side by side, and the demo's index, as HTML
and Markdown strings.

Every page is self-contained (images embedded as base64 data URIs, no scripts, no
external assets) and escapes every name it did not write itself. All styling lives under
the ``.behavioral-report`` container, so the fragment shown in Jupyter restyles nothing
outside itself.
"""

from __future__ import annotations

import base64
import datetime as _dt
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from behavioral.report import views
from behavioral.report.text import (
    NUISANCE_NOTES,
    SCOPE_CAVEAT,
    VERDICT_MEANING,
    code_md,
    esc,
    fmt_ci,
    fmt_num,
    fmt_p,
    md,
    sentence,
    unusual_values,
)

if TYPE_CHECKING:
    from behavioral.auditing import Audit

__all__ = [
    "REPORT_CSS",
    "SCOPE",
    "VERDICT_COLORS",
    "comparison_markdown",
    "comparison_page",
    "demo_index",
    "report_fragment",
    "report_markdown",
    "report_page",
    "scope_css",
    "title",
]

VERDICT_COLORS = {
    "aligned": "#1a7f37",
    "proxy": "#c62828",
    "indistinguishable": "#b26a00",
    "unexplained": "#57606a",
}

#: The class of the container every page's content sits in.
SCOPE = "behavioral-report"

_RULES = """
{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#1f2328;line-height:1.45}
h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #d0d7de;padding-bottom:.2em;margin-top:1.6em}
h3{font-size:1.3em}
.verdict{display:inline-block;color:#fff;font-weight:700;padding:.25em .7em;border-radius:.4em;
font-size:1.15em;letter-spacing:.03em}
.reason{font-size:1.08em;margin:.6em 0}.meaning{color:#57606a}
.caveat{background:#fff8c5;border:1px solid #d4a72c;padding:.6em .8em;border-radius:.4em}
.notes{color:#57606a;font-size:.9em;margin:.3em 0;padding-left:1.2em}
.unusual{background:#fff1e5;border:1px solid #e5a25b;padding:.4em .8em .4em 1.8em;border-radius:.4em;font-size:.92em}
table{border-collapse:collapse;font-size:.88em;margin:.6em 0}
th,td{border:1px solid #d0d7de;padding:.3em .55em;text-align:left;vertical-align:top}
thead th{background:#f6f8fa}tbody th{font-weight:600;background:#fafbfc}
figure{margin:1.2em 0}figure img{max-width:100%;height:auto;border:1px solid #eaeef2}
figcaption{color:#57606a;font-size:.88em}.cols{display:flex;gap:1.2em;flex-wrap:wrap}
.cols>div{flex:1 1 420px;min-width:0}code{background:#f6f8fa;padding:0 .25em}
"""


def scope_css(rules: str, scope: str) -> str:
    """Prefix every selector of ``rules`` with ``.scope`` (a rule starting with ``{``
    styles the container itself). No @-rules."""
    out = []
    for block in rules.split("}"):
        if "{" not in block:
            continue
        selectors, body = block.split("{", 1)
        scoped = [
            f".{scope} {s.strip()}" if s.strip() else f".{scope}" for s in selectors.split(",")
        ]
        out.append(",".join(scoped) + "{" + " ".join(body.split()) + "}")
    return "\n".join(out)


#: The report's style sheet, every rule under ``.behavioral-report``.
REPORT_CSS = scope_css(_RULES, SCOPE)


# ----------------------------------------------------------------------------- pieces


def title(audit: Audit) -> str:
    """``Audit of <policy name> on <env id> (split <split>)``."""
    run = views.run_view(audit)
    where = run.env_id or "tabular levels"
    split = f" (split {run.split})" if run.split else ""
    return f"Audit of {run.policy_name} on {where}{split}"


def _img(data: bytes, alt: str) -> str:
    b64 = base64.b64encode(data).decode("ascii")
    return f'<img src="data:image/png;base64,{b64}" alt="{esc(alt)}">'


def _figure(data: bytes, alt: str, caption: str) -> str:
    return f"<figure>{_img(data, alt)}<figcaption>{esc(caption)}</figcaption></figure>"


def _verdict_html(audit: Audit) -> str:
    color = VERDICT_COLORS.get(audit.verdict, "#57606a")
    proxy = f" — proxy <code>{esc(audit.proxy)}</code>" if audit.proxy else ""
    return (
        f'<p><span class="verdict" style="background:{color}">{esc(audit.verdict.upper())}</span>'
        f"{proxy}</p>\n"
        f'<p class="reason">{esc(sentence(audit.reason))}</p>\n'
        f'<p class="meaning">{esc(VERDICT_MEANING.get(audit.verdict, ""))}</p>\n'
    )


def _html_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    out = ["<table><thead><tr>", *(f"<th>{esc(h)}</th>" for h in head), "</tr></thead><tbody>"]
    for r in rows:
        out.append("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _rows_table(rows: Sequence[tuple[str, str]]) -> str:
    """A two-column table of named values: no header row, each row's name its header."""
    body = "".join(f'<tr><th scope="row">{esc(k)}</th><td>{esc(v)}</td></tr>' for k, v in rows)
    return f"<table><tbody>{body}</tbody></table>"


def _md_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(md(h) for h in head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(md(c) for c in r) + " |" for r in rows]
    return lines


def _coverage_text(audit: Audit) -> str:
    c = views.coverage_view(audit)
    return (
        f"EPIC compared rewards on the coverage “{c.name}”: {c.n_transitions} transitions "
        f"over {len(audit.demonstrations)} episodes on {len(audit.levels)} level(s), "
        f"covering {c.n_states_covered} of {c.n_states} states and "
        f"{c.n_state_actions_covered} state-action pairs (worth "
        f"{c.effective_transitions:.0f} equally likely transitions)."
    )


_NUISANCE_COLUMNS = {"living reward": "living_reward", "discount": "discount", "lapse": "lapse"}


def _candidate_table(
    audit: Audit,
) -> tuple[list[str], list[list[str]], list[tuple[str, str]], list[str]]:
    """Header, rows, one (term, meaning) note per column that needs one, and one line per
    unusual value."""
    cands = views.candidate_views(audit)
    shown = [
        h
        for h, attr in _NUISANCE_COLUMNS.items()
        if any(getattr(c, attr) is not None for c in cands)
    ]
    head = ["objective", "role", "β", *shown]
    head += [
        "log-lik / episode [CI]",
        "Δ vs base [CI]",
        "EPIC to recovered [CI]",
        "EPIC to base",
        "explained",
    ]
    rows = []
    for c in cands:
        row = [c.name, c.role, fmt_num(c.beta)]
        row += [fmt_num(getattr(c, _NUISANCE_COLUMNS[h])) for h in shown]
        row += [
            fmt_ci(c.log_likelihood, c.log_likelihood_ci),
            fmt_ci(c.delta, c.delta_ci),
            fmt_ci(c.epic, c.epic_ci),
            fmt_num(c.epic_to_base),
            fmt_num(c.explained),
        ]
        rows.append(row)
    ev = views.evidence_view(audit)
    notes = [(h, text) for h, text in NUISANCE_NOTES if h == "β" or h in shown]
    notes += [
        ("[CI]", f"{ev.confidence:.0%} bootstrap interval over episodes."),
        ("Δ vs base", "log-likelihood per episode minus the base objective's."),
        (
            "explained",
            "the fraction of the recovered reward's likelihood gain over the null model "
            "that the candidate reaches.",
        ),
    ]
    return head, rows, notes, unusual_values(cands, ev)


def _details(audit: Audit) -> list[tuple[str, str]]:
    rec, run, ev = audit.recovered, views.run_view(audit), views.evidence_view(audit)
    out = [
        ("policy", run.policy_name),
        ("best candidate", str(ev.best)),
        (
            "likelihood ratio, best candidate vs null model",
            f"{fmt_num(ev.lr_vs_null)} ({fmt_p(ev.p_vs_null)})",
        ),
        (
            "likelihood ratio, recovered reward vs best candidate",
            f"{fmt_num(ev.lr_recovered_vs_best)} ({fmt_p(ev.p_recovered_vs_best)})",
        ),
        ("explained by the best candidate", fmt_num(ev.explained_by_best)),
        (
            "recovered reward",
            f"{rec.method}, features: {rec.feature_mode}, converged: {rec.converged}, "
            f"{rec.iterations} iterations, feature gap {fmt_num(rec.feature_gap)}, "
            f"log-likelihood {fmt_num(rec.log_likelihood)} per episode",
        ),
    ]
    extra = [
        ("policy description", run.policy_description),
        ("env id", run.env_id),
        ("env kwargs", json.dumps(dict(run.env_kwargs), default=str) if run.env_kwargs else None),
        (
            "observation wrappers (innermost first)",
            ", ".join(run.observation_wrappers) if run.observation_wrappers else None,
        ),
        ("split", run.split),
        ("method", run.method),
        ("seed", run.seed),
        ("episodes", run.n_episodes),
        ("levels", run.n_levels),
        ("behavioral version", run.version),
    ]
    out += [(k, str(v)) for k, v in extra if v is not None]
    return out


def _design_text(d: views.DesignView) -> str:
    how = (
        "chose each batch of levels by the evidence one episode there was expected to add"
        if d.design == "active"
        else "drew each batch of levels at random"
    )
    end = (
        "stopped as soon as a test was decisive"
        if d.stopped == "decisive"
        else f"spent its budget of {d.budget} episodes without a decisive test"
    )
    return (
        f"This audit {how}, among {d.n_candidates} candidate levels from {d.source}, and "
        f"{end}: {d.reason}. Each test rejects at e-value {fmt_num(math.exp(d.threshold))} "
        f"(alpha = {d.alpha:g}, Bonferroni over the proxies), whatever the levels and the "
        "stopping time."
    )


def _design_rows(d: views.DesignView) -> tuple[list[str], list[list[str]]]:
    head = ["", "origin", "edits from training", "expected evidence (nats/episode)", "episodes"]
    rows = []
    for what, levels in (("chosen", d.chosen), ("random", d.random)):
        for lv in levels:
            far = "unknown" if lv.distance is None else f"{lv.distance:g}"
            rows.append([what, lv.origin, far, fmt_num(lv.expected), str(lv.episodes)])
    return head, rows


def _is_design_figure(name: str) -> bool:
    return name.startswith("design_")


# ----------------------------------------------------------------------------- one audit


def _body(
    audit: Audit, images: Mapping[str, bytes], captions: Mapping[str, str], *, heading: str
) -> str:
    head, rows, notes, unusual = _candidate_table(audit)
    name = views.run_view(audit).policy_name
    parts = [
        f"<{heading}>{esc(title(audit))}</{heading}>",
        _verdict_html(audit),
        f'<p class="caveat"><b>Scope.</b> {esc(SCOPE_CAVEAT)}</p>',
        f"<p><b>Coverage used.</b> {esc(_coverage_text(audit))}</p>",
        "<h2>Candidate objectives</h2>",
        _html_table(head, rows),
        '<ul class="notes">'
        + "".join(f"<li><b>{esc(term)}</b>: {esc(text)}</li>" for term, text in notes)
        + "</ul>",
    ]
    if unusual:
        parts.append(
            "<p><b>Read with care.</b></p>"
            '<ul class="unusual">' + "".join(f"<li>{esc(n)}</li>" for n in unusual) + "</ul>"
        )
    design = views.design_view(audit)
    if design is not None:
        parts += ["<h2>Levels chosen by the audit</h2>", f"<p>{esc(_design_text(design))}</p>"]
        parts.append(_html_table(*_design_rows(design)))
        for fname, data in images.items():
            if _is_design_figure(fname):
                parts.append(_figure(data, f"{name}: {fname}", captions.get(fname, "")))
    parts.append("<h2>Figures</h2>")
    for fname, data in images.items():
        if not _is_design_figure(fname):
            parts.append(_figure(data, f"{name}: {fname}", captions.get(fname, "")))
    parts += ["<h2>Details</h2>", _rows_table(_details(audit))]
    return "\n".join(parts)


def _page(page_title: str, body: str, footer: str | None = None) -> str:
    """A self-contained HTML document: ``body`` inside the styled container."""
    if footer is None:
        when = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        footer = f"Written by behavioral on {when}."
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(page_title)}</title>"
        f"<style>body{{margin:0;background:#fff}}\n{REPORT_CSS}</style></head><body>\n"
        f'<div class="{SCOPE}">\n{body}\n'
        f'<footer><p class="meaning">{esc(footer)}</p></footer>'
        "</div></body></html>\n"
    )


def report_page(audit: Audit, images: Mapping[str, bytes], captions: Mapping[str, str]) -> str:
    """``report.html``: verdict, scope, candidate table, figures, details."""
    return _page(title(audit), _body(audit, images, captions, heading="h1"))


def report_fragment(audit: Audit, images: Mapping[str, bytes], captions: Mapping[str, str]) -> str:
    """The report as an HTML fragment (for ``Audit._repr_html_``): its style sheet and its
    content inside one ``.behavioral-report`` container, no rule outside it."""
    return (
        f'<div class="{SCOPE}"><style>{REPORT_CSS}</style>'
        f"{_body(audit, images, captions, heading='h3')}</div>"
    )


def report_markdown(audit: Audit, figure_names: Sequence[str], captions: Mapping[str, str]) -> str:
    """The report as Markdown, referring to the PNGs next to it."""
    head, rows, notes, unusual = _candidate_table(audit)
    lines = [f"# {md(title(audit))}", ""]
    proxy = f" (proxy: {code_md(audit.proxy)})" if audit.proxy else ""
    lines += [f"**Verdict: {audit.verdict.upper()}**{proxy}", ""]
    lines += [md(sentence(audit.reason)), ""]
    lines += [f"_{md(VERDICT_MEANING.get(audit.verdict, ''))}_", ""]
    lines += [f"> **Scope.** {md(SCOPE_CAVEAT)}", ""]
    lines += [f"**Coverage used.** {md(_coverage_text(audit))}", ""]
    lines += ["## Candidate objectives", "", *_md_table(head, rows), ""]
    lines += [f"- **{md(term)}**: {md(text)}" for term, text in notes] + [""]
    if unusual:
        lines += ["**Read with care.**", "", *(f"- {md(n)}" for n in unusual), ""]
    design = views.design_view(audit)
    if design is not None:
        lines += ["## Levels chosen by the audit", "", md(_design_text(design)), ""]
        lines += [*_md_table(*_design_rows(design)), ""]
        for name in figure_names:
            if _is_design_figure(name):
                lines += [f"![{name}]({name})", "", md(captions.get(name, "")), ""]
    lines += ["## Figures", ""]
    for name in figure_names:
        if not _is_design_figure(name):
            lines += [f"![{name}]({name})", "", md(captions.get(name, "")), ""]
    lines += ["## Details", ""]
    lines += [f"- **{md(k)}**: {md(v)}" for k, v in _details(audit)]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- comparison


def comparison_title(audits: Sequence[Audit], labels: Sequence[str]) -> str:
    """``<policy name> on <env id>: <label> vs <label>``."""
    run = views.run_view(audits[0])
    return f"{run.policy_name} on {run.env_id or 'tabular levels'}: " + " vs ".join(labels)


def comparison_page(
    audits: Sequence[Audit],
    labels: Sequence[str],
    images: Mapping[str, bytes],
    captions: Mapping[str, str],
    *,
    page_title: str,
    links: Sequence[str | None] | None = None,
) -> str:
    """The side-by-side page: each split's verdict, the glance figure, each split's
    candidate table and its most visited level's maps (``images``: ``glance.png`` first)."""
    parts = [f"<h1>{esc(page_title)}</h1>", '<div class="cols">']
    for i, (a, lab) in enumerate(zip(audits, labels)):
        link = ""
        if links is not None and links[i]:
            link = f'<p><a href="{esc(links[i])}">full report</a></p>'
        parts.append(f"<div><h2>{esc(lab)}</h2>{_verdict_html(a)}{link}</div>")
    parts.append("</div>")
    parts.append(f'<p class="caveat"><b>Scope.</b> {esc(SCOPE_CAVEAT)}</p>')
    parts.append(_figure(images["glance.png"], f"{page_title}: glance.png", captions["glance.png"]))
    for a, lab in zip(audits, labels):
        head, rows, _, unusual = _candidate_table(a)
        parts += [f"<h2>Candidates on {esc(lab)}</h2>", f"<p>{esc(_coverage_text(a))}</p>"]
        parts.append(_html_table(head, rows))
        if unusual:
            parts.append(
                '<ul class="unusual">' + "".join(f"<li>{esc(n)}</li>" for n in unusual) + "</ul>"
            )
    parts.append("<h2>Maps of each split's most visited level</h2>")
    for name, data in images.items():
        if name != "glance.png":
            parts.append(_figure(data, f"{page_title}: {name}", captions.get(name, "")))
    return _page(page_title, "\n".join(parts))


def comparison_markdown(
    audits: Sequence[Audit],
    labels: Sequence[str],
    figure_names: Sequence[str],
    captions: Mapping[str, str],
    *,
    page_title: str,
) -> str:
    """The side-by-side report as Markdown, referring to the PNGs next to it."""
    lines = [f"# {md(page_title)}", ""]
    for a, lab in zip(audits, labels):
        proxy = f" (proxy: {code_md(a.proxy)})" if a.proxy else ""
        lines += [f"## {md(lab)}: **{a.verdict.upper()}**{proxy}", "", md(sentence(a.reason)), ""]
    lines += [f"> **Scope.** {md(SCOPE_CAVEAT)}", ""]
    lines += ["![glance.png](glance.png)", "", md(captions.get("glance.png", "")), ""]
    for a, lab in zip(audits, labels):
        head, rows, _, unusual = _candidate_table(a)
        lines += [
            f"## Candidates on {md(lab)}",
            "",
            md(_coverage_text(a)),
            "",
            *_md_table(head, rows),
            "",
        ]
        lines += [*(f"- {md(n)}" for n in unusual), ""] if unusual else []
    for name in figure_names:
        if name != "glance.png":
            lines += [f"![{name}]({name})", "", md(captions.get(name, "")), ""]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- demo index


def demo_index(
    rows: Sequence[tuple[str, str, str, Audit]],
    descriptions: Mapping[str, str],
    glances: Mapping[str, bytes],
    *,
    episodes: int,
    seed: int,
    use_zoo: bool,
    version: str,
) -> tuple[str, str]:
    """The demo's ``index.html`` and ``index.md``.

    Args:
        rows: (policy name, env id, split, audit) of every audit, in order; each report
            is at ``<name>/<split>/report.html`` and each policy's comparison at
            ``<name>/comparison/``.
        descriptions: policy name -> one line about it.
        glances: policy name -> its comparison's ``glance.png`` (embedded in the page).
        episodes, seed: the demo's settings.
        use_zoo: the policies are the trained zoo's (else tabular planners).
        version: the library version.
    """
    source = (
        "the trained policy zoo"
        if use_zoo
        else "Boltzmann-rational tabular planners, one per objective (the trained policy zoo "
        "was not installed)"
    )
    when = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "<h1>behavioral demo: what are these policies trying to do?</h1>",
        f"<p>Policies: {esc(source)}. Each was rolled out for {episodes} episodes (seed "
        f"{seed}) on the <code>train</code> and <code>deploy</code> splits of its env and "
        "audited: MaxEnt IRL recovers its behavioural objective, and each candidate objective "
        "(the base objective and the proxies) is tested against the behaviour. Pseudo-"
        "alignment shows as <i>indistinguishable</i> on <code>train</code> (where the proxy "
        "and the base objective coincide) and <i>proxy</i> on <code>deploy</code>.</p>",
        f'<p class="caveat"><b>Scope.</b> {esc(SCOPE_CAVEAT)}</p>',
        "<table><thead><tr><th>policy</th><th>env</th><th>split</th><th>verdict</th>"
        "<th>reason</th><th>report</th></tr></thead><tbody>",
    ]
    lines = [
        "# behavioral demo",
        "",
        f"Policies: {md(source)}; {episodes} episodes per audit, seed {seed}.",
        "",
        f"> **Scope.** {md(SCOPE_CAVEAT)}",
        "",
        *_md_table(["policy", "env", "split", "verdict", "reason", "report"], []),
    ]
    for name, env_id, split, result in rows:
        color = VERDICT_COLORS.get(result.verdict, "#57606a")
        verdict = result.verdict + (f" ({result.proxy})" if result.proxy else "")
        link = f"{name}/{split}/report.html"
        parts.append(
            f"<tr><td>{esc(name)}</td><td>{esc(env_id)}</td><td>{esc(split)}</td>"
            f'<td><span class="verdict" style="background:{color};font-size:.9em">'
            f"{esc(verdict)}</span></td><td>{esc(sentence(result.reason))}</td>"
            f'<td><a href="{esc(link)}">report</a></td></tr>'
        )
        lines.append(
            f"| {md(name)} | {md(env_id)} | {md(split)} | **{md(verdict)}** | "
            f"{md(sentence(result.reason))} | [report]({_md_link(link)}) |"
        )
    parts.append("</tbody></table>")
    lines.append("")
    for name in dict.fromkeys(r[0] for r in rows):
        about = descriptions.get(name, "")
        parts.append(
            f"<h2>{esc(name)}: train vs deploy</h2>" + (f"<p>{esc(about)}</p>" if about else "")
        )
        if name in glances:
            parts.append(
                f"<figure>{_img(glances[name], f'{name} at a glance')}"
                f'<figcaption><a href="{esc(name)}/comparison/report.html">side-by-side report</a>'
                "</figcaption></figure>"
            )
        lines += [f"## {md(name)}: train vs deploy", ""]
        lines += [md(about), ""] if about else []
        lines += [
            f"![{md(name)}]({_md_link(name)}/comparison/glance.png)",
            "",
            f"[side-by-side report]({_md_link(name)}/comparison/report.md)",
            "",
        ]
    page = _page("behavioral demo", "\n".join(parts), f"behavioral {version}, {when}.")
    return page, "\n".join(lines) + "\n"


def _md_link(target: str) -> str:
    """A relative link target safe inside Markdown ``(...)``: no spaces or parentheses."""
    return re.sub(r"[\s()<>]", lambda m: f"%{ord(m.group()):02X}", target)
