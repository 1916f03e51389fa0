"""``hugectr.data.DataSourceParams``: the spelling HugeCTR's Model methods use for ``data_source_params``.

Example:
    >>> import hugectr, hugectr.data
    >>> hugectr.data.DataSourceParams is hugectr.DataSourceParams
    True
"""
from hugectr_core.params import DataSourceParams

__all__ = ["DataSourceParams"]
