"""``hugectr.parquet.DataSourceParams``: the spelling of HugeCTR's Data Source API section.

Example:
    >>> import hugectr, hugectr.parquet
    >>> hugectr.parquet.DataSourceParams is hugectr.DataSourceParams
    True
"""
from hugectr_core.params import DataSourceParams

__all__ = ["DataSourceParams"]
