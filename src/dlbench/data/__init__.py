"""Dataset registry: ``get_dataset(name).load(data_dir)`` -> uint8 tensors; see :mod:`._registry`."""

from dlbench.data._registry import ArrayDataset, DatasetInfo, DatasetSpec, get_dataset, list_datasets

__all__ = ["ArrayDataset", "DatasetInfo", "DatasetSpec", "get_dataset", "list_datasets"]
