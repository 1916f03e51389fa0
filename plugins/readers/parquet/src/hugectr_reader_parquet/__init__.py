"""hugectr-reader-parquet: HugeCTR's Parquet reader (file list + ``_metadata.json``, formats.md 2.4).

Example:
    >>> from hugectr_reader_parquet import slot_offsets
    >>> slot_offsets([10000, 50000, 20000, 300]).tolist()
    [0, 10000, 60000, 80000]
"""
from .dataset import Columns, FileDecoder, Metadata, read_file_list, slot_bounds, slot_offsets
from .reader import Parquet, to_csr

__all__ = ["Columns", "FileDecoder", "Metadata", "Parquet", "read_file_list", "slot_bounds", "slot_offsets",
           "to_csr"]
