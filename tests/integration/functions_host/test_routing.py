"""Route templates and route choice, as ASP.NET routing in the Functions host resolves them."""

from collections.abc import Sequence

import pytest

from tools.functions_host.config import HostConfigError
from tools.functions_host.routing import Router, RouteTemplate


def resolve(routes: Sequence[tuple[str, frozenset[str] | None]], method: str, path: str) -> tuple[str, dict[str, str]]:
    router = Router((template, methods, template) for template, methods in routes)
    match = router.resolve(method, path)
    assert match is not None, f"{method} {path} matched nothing"
    return match.target, match.route_params


def no_match(routes: Sequence[tuple[str, frozenset[str] | None]], method: str, path: str) -> bool:
    return Router((t, m, t) for t, m in routes).resolve(method, path) is None


def test_literal_route_wins_over_parameter_route() -> None:
    routes = [("citas/{id}", None), ("citas/resumen", None)]
    assert resolve(routes, "GET", "citas/resumen") == ("citas/resumen", {})
    assert resolve(routes, "GET", "citas/7") == ("citas/{id}", {"id": "7"})


def test_int_constraint_rejects_text_and_numbers_beyond_int32() -> None:
    routes = [("citas/{id:int}", None)]
    assert resolve(routes, "GET", "citas/-12")[1] == {"id": "-12"}
    assert no_match(routes, "GET", "citas/abc")
    assert no_match(routes, "GET", "citas/2147483648")


def test_optional_parameter_may_be_absent() -> None:
    routes = [("reportes/{fecha?}", None)]
    assert resolve(routes, "GET", "reportes") == ("reportes/{fecha?}", {})
    assert resolve(routes, "GET", "reportes/2024-05-01")[1] == {"fecha": "2024-05-01"}


def test_default_value_fills_a_missing_parameter() -> None:
    assert resolve([("pagina/{n:int=1}", None)], "GET", "pagina")[1] == {"n": "1"}


def test_catch_all_takes_the_rest_and_is_tried_last() -> None:
    routes = [("docs/{*rest}", None), ("docs/{name}", None)]
    assert resolve(routes, "GET", "docs/a") == ("docs/{name}", {"name": "a"})
    assert resolve(routes, "GET", "docs/a/b/c") == ("docs/{*rest}", {"rest": "a/b/c"})


def test_segment_mixing_literal_and_parameters() -> None:
    assert resolve([("files/{name}.{ext}", None)], "GET", "files/informe.final.pdf")[1] == {
        "name": "informe.final",
        "ext": "pdf",
    }


def test_method_filters_routes_and_same_template_serves_several_methods() -> None:
    routes = [("citas/{id}", frozenset({"GET"})), ("citas/{id}/", frozenset({"PUT"}))]
    assert resolve(routes, "put", "citas/3") == ("citas/{id}/", {"id": "3"})
    assert no_match(routes, "DELETE", "citas/3")


def test_extra_segments_do_not_match() -> None:
    assert no_match([("citas/{id}", None)], "GET", "citas/3/extra")


@pytest.mark.parametrize("template", ["citas/{id:nope}", "a/{*rest}/b", "a/{id", "a/{id:min(x)}"])
def test_templates_the_host_cannot_honour_fail_at_start_up(template: str) -> None:
    with pytest.raises(HostConfigError):
        RouteTemplate.parse(template)


@pytest.mark.parametrize(
    ("constraint", "accepted", "rejected"),
    [
        ("guid", "0f8fad5b-d9cb-469f-a165-70867728950e", "123"),
        ("bool", "True", "yes"),
        ("alpha", "abc", "ab1"),
        ("min(10)", "10", "9"),
        ("range(1,3)", "2", "4"),
        ("length(2)", "ab", "abc"),
        ("regex(^\\d{{3}}$)", "123", "1234"),
    ],
)
def test_inline_constraints(constraint: str, accepted: str, rejected: str) -> None:
    routes = [(f"x/{{v:{constraint}}}", None)]
    assert resolve(routes, "GET", f"x/{accepted}")[1] == {"v": accepted}
    assert no_match(routes, "GET", f"x/{rejected}")


@pytest.mark.parametrize("value", ["٣", "²", "１２", "1٣", "9" * 5000])
def test_numeric_constraints_take_ascii_digits_only(value: str) -> None:
    for template in ("citas/{id:int}", "citas/{id:long}", "citas/{id:decimal}", "citas/{id:min(1)}"):
        assert no_match([(template, None)], "GET", f"citas/{value}"), template
