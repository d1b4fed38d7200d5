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
