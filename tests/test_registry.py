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
