"""Result folders as the review page sees them: the format's reader lives with its writer in
:mod:`lgrnet.io.results`; this module keeps the viewer's imports short."""
from ..io.results import PREDICTIONS, Result, find_results, load_result, safe_filename

__all__ = ["PREDICTIONS", "Result", "find_results", "load_result", "safe_filename"]
