"""``lgrnet view``: a local review page over result folders of ``lgrnet predict`` / ``lgrnet demo``.

The server (:mod:`.server`) uses only the standard library's ``http.server``; the page
(``static/``) is plain HTML, JS and CSS with no build step and nothing loaded from elsewhere.
"""
from ..results.folder import Result, find_results, load_result
from .server import ViewerApp, make_server, mask_outline, serve_in_thread

__all__ = ["Result", "ViewerApp", "find_results", "load_result", "make_server", "mask_outline", "serve_in_thread"]
