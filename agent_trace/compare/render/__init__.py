"""Renderers: views of a `Report`. Each returns text (or a rich renderable) and never does IO."""

from __future__ import annotations

from .json_report import render_benchmark_json, render_json, report_dict
from .junit import render_junit
from .markdown import render_markdown
from .table import render_table

__all__ = ["render_benchmark_json", "render_json", "render_junit", "render_markdown", "render_table", "report_dict"]
