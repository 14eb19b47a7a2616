"""Input expansion with upstream's semantics (upstream-converter.md §3), plus `-` for stdin.

Each argument is globbed (sorted); no match keeps it as a literal path. A directory contributes
its direct `*.jsonl` then `*.jsonl.gz` children. The result is de-duplicated and sorted, so gzip
segments `.000000`, `.000001`, ... come out in segment order. Stdin, if asked for, comes first.
"""

from __future__ import annotations

import glob
from pathlib import Path

from ..errors import MissingInputError, NoInputError

STDIN = "-"


def expand_inputs(inputs: list[str] | tuple[str, ...]) -> list[str]:
    """Return the files to read, in reading order. Raises on a missing path or no files."""
    paths: list[Path] = []
    use_stdin = False
    for item in inputs:
        if item == STDIN:
            use_stdin = True
            continue
        matches = [Path(p) for p in sorted(glob.glob(item))] or [Path(item)]
        for candidate in matches:
            if candidate.is_dir():
                paths.extend(sorted(candidate.glob("*.jsonl")))
                paths.extend(sorted(candidate.glob("*.jsonl.gz")))
            else:
                paths.append(candidate)
    ordered = sorted(dict.fromkeys(paths))
    for path in ordered:
        if not path.exists():
            raise MissingInputError(f"input path does not exist: {path}")
    files = ([STDIN] if use_stdin else []) + [str(p) for p in ordered]
    if not files:
        raise NoInputError("no input files matched")
    return files


def default_output_path(first_input: str, suffix: str = ".perfetto.json") -> Path:
    """`trace.jsonl` -> `trace.perfetto.json`, `x.000000.jsonl.gz` -> `x.000000.perfetto.json`, next to it."""
    path = Path(first_input)
    name = path.name
    for ext in (".gz", ".jsonl", ".json"):
        if name.endswith(ext):
            name = name[: -len(ext)]
    return path.with_name((name or "trace") + suffix)
