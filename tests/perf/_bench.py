"""What the benchmark scripts share: their command line, how they report, and how the processes
they time read their resource usage (`finished_usage`)."""

from __future__ import annotations

import argparse
import json
import os
import resource
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_INPUT = ROOT / "fixtures" / "real" / "large"


def arg_parser(doc: str | None) -> argparse.ArgumentParser:
    """INPUT... (default: the large real trace), --repeat, --json; a script may add more."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("inputs", nargs="*", default=[str(DEFAULT_INPUT)])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", dest="json_out")
    return ap


def report(result: dict[str, Any], json_out: str | None) -> None:
    """Print `result` as aligned key/value lines, and write it as JSON to `json_out` if given."""
    width = max(len(k) for k in result)
    for k, v in result.items():
        print(f"{k:<{width}}  {v}")
    if json_out:
        Path(json_out).write_text(json.dumps(result, indent=2) + "\n")


def finished_usage() -> tuple[resource.struct_rusage, resource.struct_rusage]:
    """This process's resource usage and its children's, once every child has been reaped:
    agent_trace reaps a child that is done but still exiting later, and until then its usage
    counts nowhere. For the timed processes, which import this module by path."""
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            break
    return resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
