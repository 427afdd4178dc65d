"""`client.datasets` and `client.experiments`: upload rows, run template versions over them, read, compare,
promote, download."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from promptlab.client.transport import Transport
from promptlab.models.datasets import DatasetPublic
from promptlab.models.experiments import Comparison, ExperimentPublic, PromoteResult

INLINE_BYTES = 900_000  # a request body is at most 1 MB locally (10 MB behind API Gateway)
FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}
Progress = Callable[[ExperimentPublic], None]


class Datasets:
    """`client.datasets`: datasets from files or rows."""

    def __init__(self, transport: Transport) -> None:
        self._http = transport

    def upload(self, path: str | Path, *, name: str | None = None, dataset_id: str | None = None) -> DatasetPublic:
        """A JSONL or CSV file as a new dataset (named after the file), or as the next version of `dataset_id`."""
        file = Path(path)
        fmt = FORMATS.get(file.suffix.lower())
        if fmt is None:
            raise ValueError(f"{file.name}: a dataset file ends in .jsonl or .csv")
        body: dict[str, Any] = {"format": fmt}
        if file.stat().st_size > INLINE_BYTES:  # over a request body's size: PUT to a presigned URL first
            upload = self._http.call("POST", "/datasets/uploads", body={"format": fmt})
            put = urllib.request.Request(upload["url"], data=file.read_bytes(), method="PUT", headers=upload["headers"])
            with urllib.request.urlopen(put, timeout=300):
                pass
            body["upload"] = upload["uploadId"]
        else:
            body["content"] = file.read_text(encoding="utf-8")
        if dataset_id is not None:
            return DatasetPublic.model_validate(self._http.call("PUT", f"/datasets/{dataset_id}", body=body))
        body["name"] = name or file.stem
        return DatasetPublic.model_validate(self._http.call("POST", "/datasets", body=body))

    def resolve(self, reference: str) -> str:
        """A dataset id for an id (`ds_…`) or an exact name."""
        if reference.startswith("ds_"):
            return reference
        cursor: str | None = None
        while True:
            page = self._http.call("GET", "/datasets", query={"limit": 100, "cursor": cursor})
            for item in page["items"]:
                if item["name"] == reference:
                    return str(item["id"])
            cursor = page.get("nextCursor")
            if not cursor:
                raise ValueError(f"no dataset named {reference!r}")


class Experiments:
    """`client.experiments`: start, follow, compare, promote and download experiments."""

    def __init__(self, transport: Transport, sleep: Callable[[float], None] = time.sleep) -> None:
        self._http = transport
        self._sleep = sleep

    def start(self, dataset_id: str, variants: list[dict[str, Any]], **fields: Any) -> ExperimentPublic:
        """Start an experiment (fields: `scorers`, `priority`, `sample`, `name`, `cache`, `datasetVersion`)."""
        body = {"datasetId": dataset_id, "variants": variants, **{k: v for k, v in fields.items() if v is not None}}
        return ExperimentPublic.model_validate(self._http.call("POST", "/experiments", body=body))

    def get(self, experiment_id: str) -> ExperimentPublic:
        return ExperimentPublic.model_validate(self._http.call("GET", f"/experiments/{experiment_id}"))

    def wait(self, experiment_id: str, *, every: float = 1.0, progress: Progress | None = None) -> ExperimentPublic:
        """Read the experiment every `every` seconds until it ends."""
        while True:
            found = self.get(experiment_id)
            if progress is not None:
                progress(found)
            if found.status != "running":
                return found
            self._sleep(every)

    def compare(self, experiment_id: str, *, a: int = 0, b: int = 1, scorer: str | None = None) -> Comparison:
        query = {"a": a, "b": b, "scorer": scorer}
        return Comparison.model_validate(self._http.call("GET", f"/experiments/{experiment_id}/compare", query=query))

    def promote(self, experiment_id: str, *, variant: int, label: str = "production") -> PromoteResult:
        body = {"variant": variant, "label": label}
        return PromoteResult.model_validate(self._http.call("POST", f"/experiments/{experiment_id}/promote", body=body))

    def cancel(self, experiment_id: str) -> ExperimentPublic:
        return ExperimentPublic.model_validate(self._http.call("POST", f"/experiments/{experiment_id}/cancel"))

    def results(self, experiment_id: str, *, fmt: str = "csv", page_rows: int = 2_000) -> Iterator[str]:
        """The joined results as text, page after page (CSV: the header comes with the first page)."""
        cursor: str | None = None
        while True:
            query = {"format": fmt, "limit": page_rows, "cursor": cursor}
            text, headers = self._http.call_text("GET", f"/experiments/{experiment_id}/results", query=query)
            yield text
            cursor = next((v for k, v in headers.items() if k.lower() == "x-next-cursor"), None)
            if not cursor:
                return
