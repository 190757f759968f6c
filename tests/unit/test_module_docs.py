"""Every custom module's documentation parses (ansible-doc and the lint only warn when it does not)."""

import ast
from pathlib import Path

import pytest
import yaml

NAMES = ("DOCUMENTATION", "EXAMPLES", "RETURN")
MODULES = sorted((Path(__file__).resolve().parents[2] / "plugins" / "modules").glob("qb_*.py"))


def _docs(path: Path) -> dict[str, str]:
    out = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") in NAMES:
            out[node.targets[0].id] = node.value.value
    return out


@pytest.mark.parametrize("path", MODULES, ids=[p.stem for p in MODULES])
def test_module_documentation_is_yaml_and_names_the_module(path):
    docs = _docs(path)
    assert set(docs) == set(NAMES)
    documentation = yaml.safe_load(docs["DOCUMENTATION"])
    assert documentation["module"] == path.stem
    assert documentation["short_description"]
    assert isinstance(yaml.safe_load(docs["EXAMPLES"]), list)
    yaml.safe_load(docs["RETURN"])
