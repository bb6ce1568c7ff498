"""Data models, field masks and datasets."""

from synaray.data.data_model import (
    DataModel,
    Field,
    JsonDataModel,
    data_model_from_schema,
    to_json_data_model,
)
from synaray.data.datasets import (
    Dataset,
    load_jsonl,
    load_parquet,
    read_jsonl_rows,
    rows_to_dataset,
)
from synaray.data.masks import (
    apply_masks,
    base_form,
    in_mask_json,
    in_mask_schema,
    mask_schema,
    out_mask_json,
    out_mask_schema,
)
from synaray.data.schema_utils import dereference_schema

__all__ = [
    "DataModel",
    "Dataset",
    "Field",
    "JsonDataModel",
    "apply_masks",
    "base_form",
    "data_model_from_schema",
    "dereference_schema",
    "in_mask_json",
    "in_mask_schema",
    "load_jsonl",
    "load_parquet",
    "mask_schema",
    "out_mask_json",
    "out_mask_schema",
    "read_jsonl_rows",
    "rows_to_dataset",
    "to_json_data_model",
]
