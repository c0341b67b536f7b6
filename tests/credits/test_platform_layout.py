"""The site platform (credits.platform) stands apart from billing: it imports nothing of
credits outside itself, nor usage or notifications, and the modules it holds live only
there."""

import ast
import importlib.util
from pathlib import Path

import pytest

import credits.platform

PLATFORM = Path(credits.platform.__file__).parent
MODULES = sorted(PLATFORM.glob("*.py"))
MOVED = ["access", "roles", "events", "middleware", "errors", "context_processors", "home",
         "client_ip", "text", "csvsafe", "db", "models.tenants", "services.tenants"]


def _imported(path: Path) -> list[str]:
    """The absolute names of the modules `path` imports (relative ones resolved)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                names.append(node.module)
                continue
            base = ["credits", "platform"][:3 - node.level]
            module = ".".join([*base, *([node.module] if node.module else [])])
            names += [module] if node.module else [f"{module}.{a.name}" for a in node.names]
    return names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_the_platform_imports_neither_billing_nor_the_other_apps(path):
    outside = [name for name in _imported(path)
               if name.split(".")[0] in ("credits", "usage", "notifications")
               and not name.startswith("credits.platform")]
    assert outside == [], f"{path.name} imports {outside}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_every_platform_module_says_what_it_holds(path):
    assert ast.get_docstring(ast.parse(path.read_text())), path.name


@pytest.mark.parametrize("name", MOVED)
def test_the_moved_modules_are_gone_from_their_old_place(name):
    assert importlib.util.find_spec(f"credits.{name}") is None
