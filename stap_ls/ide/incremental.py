"""Pass 1 for an editor: the syntax layer's incremental parser under the names
the ide layer has always used.

The work (re-lexing around an edit, re-parsing only the top-level
declarations that changed) lives in :mod:`stap_ls.syntax.incremental`; this
module keeps :class:`DeclCache` and :func:`parse_incremental` for
:mod:`stap_ls.ide.analysis`.
"""

from __future__ import annotations

from stap_ls.syntax.incremental import DeclCache, common_prefix, parse_file_incremental
from stap_ls.syntax.parser import ParseOptions, ParseResult
from stap_ls.text import SourceFile

__all__ = ["DeclCache", "parse_incremental", "common_prefix"]


def parse_incremental(source: SourceFile, opts: ParseOptions, cache: DeclCache | None
                      ) -> ParseResult:
    """Parse ``source`` as ``parse_file`` does, reusing what ``cache`` kept."""
    return parse_file_incremental(source, opts, cache)
