"""Embedding Collection ("3G" embedding) for hugectr-core (formats.md 1.8, 2.8, 3.8)."""
from .api import (CommunicationStrategy, CompressionStrategy, EmbeddingCollectionConfig, EmbeddingTableConfig,
                  Lookup)
from .io import dump_collection, load_collection, read_meta_data
from .lookup import EmbeddingCollection, EmbeddingCollectionLookup
from .sharded import ShardedLookup, gather_tables
from .tables import DynamicTable, StaticTable

__all__ = ["CommunicationStrategy", "CompressionStrategy", "DynamicTable", "EmbeddingCollection",
           "EmbeddingCollectionConfig", "EmbeddingCollectionLookup", "EmbeddingTableConfig", "Lookup", "ShardedLookup",
           "StaticTable", "dump_collection", "gather_tables", "load_collection", "read_meta_data"]
