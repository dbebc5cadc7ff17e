"""Reading pools, mapping their schemas onto one record type, rendering records to text."""

from daar.data.readers import LoadResult, load_records
from daar.data.records import Record, RejectedRecord
from daar.data.render import Renderer

__all__ = ["Record", "RejectedRecord", "LoadResult", "load_records", "Renderer"]
