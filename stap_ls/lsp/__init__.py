"""The language server: pygls handlers over :mod:`stap_ls.ide` (see server.py)."""
