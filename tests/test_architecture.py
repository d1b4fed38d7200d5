"""The codebase's shape, as ARCHITECTURE.md states it: arrows point down, commands do not import the
app, registry keys name their modules (or are listed), and functions stay short enough to read."""

import ast
import re
from pathlib import Path

import transferkit
from transferkit.registry import Registry

SRC = Path(transferkit.__file__).parent
ROOT = SRC.parent.parent
LOWER = ["data", "backbones", "heads", "strategies", "engine", "adaptation", "continual", "fewshot", "peft"]
LOWER += ["transferability", "interpret", "zeroshot", "segmentation", "detection", "anomaly", "semi"]
UPPER = ("transferkit.api", "transferkit.auto", "transferkit.cli", "transferkit.report", "transferkit.serve")
LONG_FUNCTION = 60  # statements' lines, docstring excluded


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
    return names


def test_no_lower_layer_imports_an_upper_one():
    upward = [
        f"{path.relative_to(SRC)} imports {name}"
        for package in LOWER
        for path in (SRC / package).rglob("*.py")
        for name in _imports(path)
        if name.startswith(UPPER)
    ]
    assert upward == []


def test_command_modules_do_not_import_the_app():
    circular = [
        p.name for p in (SRC / "cli").glob("*.py") if p.name != "main.py" and "transferkit.cli.main" in _imports(p)
    ]
    assert circular == []


def _registries() -> list[Registry]:
    import transferkit.adaptation
    import transferkit.anomaly
    import transferkit.continual
    import transferkit.fewshot
    import transferkit.heads
    import transferkit.peft
    import transferkit.strategies
    import transferkit.transferability
    import transferkit.zeroshot

    packages = [transferkit.adaptation, transferkit.anomaly, transferkit.continual, transferkit.fewshot]
    packages += [transferkit.heads]
    packages += [transferkit.peft, transferkit.strategies, transferkit.transferability, transferkit.zeroshot]
    found = []
    for package in packages:
        base = __import__(f"{package.__name__}.base", fromlist=["_"])
        found += [value for value in vars(base).values() if isinstance(value, Registry)]
    return found


def test_registry_keys_name_their_modules_or_are_listed_in_architecture_md():
    table = (ROOT / "ARCHITECTURE.md").read_text()
    listed = {
        (kind.strip(), key.strip())
        for kind, keys in re.findall(r"^\| (\w[\w -]*) \| ([\w ,-]+) \| \S+\.py", table, re.M)
        for key in keys.split(",")
    }
    registries = _registries()
    assert len(registries) == 9
    unexplained = [
        f"{registry.kind} {key!r} in {registry.get(key).__module__}"
        for registry in registries
        for key in registry.names()
        if registry.get(key).__module__.rsplit(".", 1)[-1] != key.replace("-", "_")
        and (registry.kind.split()[0], key) not in listed
    ]
    assert unexplained == []


def _long_functions() -> list[str]:
    found = []
    for path in SRC.rglob("*.py"):
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            body = node.body[1:] if ast.get_docstring(node) is not None else node.body
            length = body[-1].end_lineno - body[0].lineno + 1 if body else 0
            reason = lines[node.lineno - 2].strip().startswith("# long:")
            if length > LONG_FUNCTION and not reason:
                found.append(f"{path.relative_to(SRC)}:{node.lineno} {node.name} ({length} lines)")
    return found


def test_no_function_is_longer_than_sixty_lines_without_a_stated_reason():
    assert _long_functions() == []
