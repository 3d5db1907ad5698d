"""The Simplified Chinese catalog is complete and compiled."""

import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
from django.template import Context, Template
from django.utils import translation

CATALOG = Path(__file__).resolve().parent.parent / "locale" / "zh_Hans" / "LC_MESSAGES"

pytestmark = pytest.mark.skipif(shutil.which("msgfmt") is None, reason="gettext is not installed")


def test_catalog_fully_translated():
    result = subprocess.run(
        ["msgfmt", "--check", "--statistics", "-o", "/dev/null", str(CATALOG / "django.po")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "translated messages" in result.stderr
    assert "untranslated" not in result.stderr
    assert "fuzzy" not in result.stderr


def test_compiled_catalog_up_to_date(tmp_path):
    compiled = tmp_path / "django.mo"
    subprocess.run(
        ["msgfmt", "--check", "-o", str(compiled), str(CATALOG / "django.po")], check=True
    )
    assert compiled.read_bytes() == (CATALOG / "django.mo").read_bytes()


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_numbers_grouped_by_thousands(language):
    template = Template('{{ count|floatformat:"0g" }} {{ cost|floatformat:"4g" }}')

    with translation.override(language):
        rendered = template.render(Context({"count": 4274, "cost": Decimal("1234.5")}))

    assert rendered == "4,274 1,234.5000"
