"""stap_ls: a SystemTap language toolchain and language server."""

__version__ = "0.1.0"
