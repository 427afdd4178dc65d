import json
import subprocess
import sys
from pathlib import Path

API = Path(__file__).resolve().parents[2] / "functions" / "api"


def test_the_api_function_stays_light() -> None:
    code = "import json, sys, app; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=API, capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout))
    # (Powertools imports the bare `botocore` package for its user agent; that costs under a millisecond.)
    heavy = {"anthropic", "openai", "boto3", "botocore.client", "promptlab.jobs.worker", "promptlab.providers.fake"}
    assert loaded & heavy == set()
