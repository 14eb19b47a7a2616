"""Ingest: paths -> bytes -> typed records + accounting.

    sources  input arguments (files, directories, globs, '-') to an ordered file list
    lines    byte streams (plain, multi-member gzip, damaged) to numbered lines
    typed    the fast path: a line straight into a typed record (msgspec)
    parse    the slow path: a decoded value into a record, counting exactly what is wrong
    eras     identity adapters, one per format era
    reader   files to a stream of records and a ReadReport

Reading knows nothing of layout or output.
"""

from .reader import collect, iter_records, read_files, records_from_objects
from .sources import STDIN, default_output_path, expand_inputs

__all__ = [
    "STDIN",
    "collect",
    "default_output_path",
    "expand_inputs",
    "iter_records",
    "read_files",
    "records_from_objects",
]
