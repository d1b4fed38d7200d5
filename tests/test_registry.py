import pytest

from transferkit.errors import UnknownNameError
from transferkit.registry import Registry


def test_unknown_name_suggests_the_closest():
    reg: Registry[int] = Registry("widget")
    reg.register("coral")(1)
    reg.register("dann")(2)
    with pytest.raises(
        UnknownNameError, match=r"No widget named 'corla'\. Did you mean 'coral'\? Available: coral, dann"
    ):
        reg.get("corla")


def test_duplicate_registration_is_refused():
    reg: Registry[int] = Registry("widget")
    reg.register("a")(1)
    with pytest.raises(KeyError, match="already registered"):
        reg.register("a")(2)


def test_create_refuses_unknown_options_but_lets_errors_inside_the_factory_through():
    from transferkit.errors import ConfigError

    reg: Registry = Registry("widget")

    @reg.register("w")
    def make(size: int = 1, depth: int = 2) -> int:
        return size + len(depth)  # a bug inside the factory: len() of an int raises TypeError

    with pytest.raises(ConfigError, match=r"Bad options for widget 'w'.*Valid options: size, depth"):
        reg.create("w", colour=3)
    with pytest.raises(TypeError, match="has no len"):
        reg.create("w", size=1)


REGISTRIES = {  # package → its registry (module attribute); importing the package must register every method file
    "transferkit.heads": "transferkit.heads.base:heads",
    "transferkit.strategies": "transferkit.strategies.base:strategies",
    "transferkit.peft": "transferkit.peft.base:peft_methods",
    "transferkit.adaptation": "transferkit.adaptation.base:adaptation_methods",
    "transferkit.continual": "transferkit.continual.base:continual_methods",
    "transferkit.fewshot": "transferkit.fewshot.base:fewshot_methods",
    "transferkit.anomaly": "transferkit.anomaly.base:ANOMALY_METHODS",
    "transferkit.transferability": "transferkit.transferability.base:scores",
    "transferkit.zeroshot": "transferkit.zeroshot.base:zeroshot_methods",
}


def test_importing_a_package_registers_every_method_file_in_it():
    """In a fresh interpreter (this process may have imported more): a saved model whose head is ``svm`` could
    not be loaded by ``predict`` because nothing had imported ``heads/svm.py``."""
    import json
    import re
    import subprocess
    import sys
    from pathlib import Path

    import transferkit

    root = Path(transferkit.__file__).parent
    declared = {}
    for package in REGISTRIES:
        folder = root / package.split(".")[1]
        names = [m for f in sorted(folder.glob("*.py")) for m in re.findall(r'\.register\("([^"]+)"\)', f.read_text())]
        declared[package] = sorted(names)
    script = (
        "import importlib, json, sys\n"
        "out = {}\n"
        f"for package, where in {REGISTRIES!r}.items():\n"
        "    importlib.import_module(package)\n"
        "    module, attr = where.split(':')\n"
        "    out[package] = sorted(getattr(importlib.import_module(module), attr).names())\n"
        "print(json.dumps(out))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True)
    registered = json.loads(result.stdout.strip().splitlines()[-1])
    for package, names in declared.items():
        assert names, f"no .register(...) found under {package}"
        missing = sorted(set(names) - set(registered[package]))  # (a registry may add names in a loop too)
        assert not missing, f"{package}: its files declare {missing}, but importing it does not register them"
