"""hugectr-core: the engine behind the ``hugectr`` namespace.

The engine knows contracts (``hugectr_core.contracts``), not concrete layers: every layer,
embedding, reader, optimizer and filesystem arrives through an entry-point registry
(``hugectr_core.plugins``). Importing this package never touches a GPU.
"""
__version__ = "0.1.0"
