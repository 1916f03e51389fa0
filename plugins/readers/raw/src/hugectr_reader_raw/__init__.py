"""hugectr-reader-raw: HugeCTR's RawAsync (multi-hot / legacy one-hot) and legacy Raw binary readers.

Example:
    >>> from hugectr_reader_raw import RawAsync, RecordLayout
    >>> RecordLayout(1, "<i4", 13, "<f4", False, "<u4", {"data1": (1,) * 26}).record_size
    160
"""
from .layout import RecordLayout, static_row_offsets
from .reader import Raw, RawAsync, check_finite, count_records

__all__ = ["Raw", "RawAsync", "RecordLayout", "check_finite", "count_records", "static_row_offsets"]
