"""What probes bind to: the target model (BTF, kallsyms, tracefs, DWARF/ELF), its
on-disk cache and the ``-l``/``-L`` listing.  Start at :mod:`stap_ls.targets.model`.
"""
