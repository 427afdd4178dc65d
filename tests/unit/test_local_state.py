"""Two local stacks in one data folder keep each other's endpoints."""

import json
import time
from pathlib import Path

from promptlab.local import state


def test_a_second_stack_stopping_leaves_the_first_ones_endpoints(tmp_path: Path) -> None:
    state.write(tmp_path, port=3000, url="http://127.0.0.1:3000")
    time.sleep(0.01)
    state.write(tmp_path, port=3001, url="http://127.0.0.1:3001")
    assert json.loads(state.latest(tmp_path).read_text())["PROMPTLAB_URL"] == "http://127.0.0.1:3001"
    state.forget(tmp_path, port=3001)  # the second stops: the first is the latest again
    assert json.loads(state.latest(tmp_path).read_text())["PROMPTLAB_URL"] == "http://127.0.0.1:3000"
    state.write(tmp_path, port=3001, url="http://127.0.0.1:3001")
    state.forget(tmp_path, port=3000)  # the first stops while the second is the latest: nothing changes
    assert json.loads(state.latest(tmp_path).read_text())["PROMPTLAB_URL"] == "http://127.0.0.1:3001"
    state.forget(tmp_path, port=3001)
    assert not state.latest(tmp_path).exists() and not list(tmp_path.glob("local-stack-*.json"))
