"""Text layer: source files, spans, line indexes and diagnostics.

Architecture invariant: this package imports nothing else from stap_ls and does
no I/O beyond what a caller hands it.  Every other layer speaks in its terms.
"""

from stap_ls.text.source import SourceFile, Span, Position
from stap_ls.text.diagnostics import Diagnostic, Severity, Related

__all__ = ["SourceFile", "Span", "Position", "Diagnostic", "Severity", "Related"]
