"""The example upstream response bodies in tests/fixtures/upstream/, byte for byte."""

import os
from pathlib import Path

SAMPLES_DIR = Path(
    os.environ.get(
        "CHATSITE_UPSTREAM_SAMPLES",
        Path(__file__).resolve().parents[1] / "fixtures" / "upstream",
    )
)
SAMPLE_FILES = sorted(SAMPLES_DIR.glob("*.sse"))
SAMPLE_IDS = [path.stem for path in SAMPLE_FILES]
