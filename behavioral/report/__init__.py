"""Reports of audits: maps of rewards on each level, candidate and outcome plots, HTML and
Markdown pages.

The package, layer by layer (each usable alone):

* :mod:`~behavioral.report.views` -- the report's typed view of an audit: the ONE place
  that reads ``audit.evidence``, ``audit.decision``, ``audit.table`` columns and ``audit.metadata``;
* :mod:`~behavioral.report.levels` -- arrays from level models: layouts, rewards on the
  grid, coverage, the recovered reward's residual, honest colour ranges, landmarks;
* :mod:`~behavioral.report.labels` -- names in the env's own words (red decoy, drowned
  plants, flooded cells), declared by the env;
* :mod:`~behavioral.report.text` -- numbers, p-values, episode counts and what each fitted
  value means;
* :mod:`~behavioral.report.plots` -- ``plot_*``: arrays and an optional ``ax`` in, a
  figure out; they compute nothing;
* :mod:`~behavioral.report.figures` -- the figures of an audit, assembled;
* :mod:`~behavioral.report.pages` -- HTML and Markdown pages (one audit, a comparison,
  the demo index), self-contained and escaped, styles scoped to their container;
* :mod:`~behavioral.report.writers` -- every file written, through :mod:`behavioral.files`.

:meth:`behavioral.auditing.Audit.save` calls :func:`write_report`;
``Audit._repr_html_`` calls :func:`report_html`.
"""

from behavioral.report.figures import audit_figures, comparison_figure, level_figure, level_frame
from behavioral.report.labels import env_display_names
from behavioral.report.levels import (
    ColorScale,
    Landmark,
    LevelLayout,
    Residual,
    canonical_residual,
    cell_values,
    color_scale,
    feature_profiles,
    landmarks,
    level_layout,
    visitation,
)
from behavioral.report.pages import REPORT_CSS, VERDICT_COLORS, report_markdown
from behavioral.report.plots import (
    plot_candidates,
    plot_feature_profiles,
    plot_heatmap,
    plot_level,
    plot_outcomes,
    plot_split_comparison,
    plot_weights,
)
from behavioral.report.text import SCOPE_CAVEAT, VERDICT_MEANING
from behavioral.report.views import policy_name
from behavioral.report.writers import (
    report_html,
    save_png,
    write_comparison_report,
    write_demo_index,
    write_report,
)

__all__ = [
    "REPORT_CSS",
    "SCOPE_CAVEAT",
    "VERDICT_COLORS",
    "VERDICT_MEANING",
    "ColorScale",
    "Landmark",
    "LevelLayout",
    "Residual",
    "audit_figures",
    "canonical_residual",
    "cell_values",
    "color_scale",
    "comparison_figure",
    "env_display_names",
    "feature_profiles",
    "landmarks",
    "level_figure",
    "level_frame",
    "level_layout",
    "plot_candidates",
    "plot_feature_profiles",
    "plot_heatmap",
    "plot_level",
    "plot_outcomes",
    "plot_split_comparison",
    "plot_weights",
    "policy_name",
    "report_html",
    "report_markdown",
    "save_png",
    "visitation",
    "write_comparison_report",
    "write_demo_index",
    "write_report",
]
