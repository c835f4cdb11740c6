"""schemathesis against /api/openapi.json on a real server: no 5xx, the documented answers.

Every operation as an anonymous visitor and as a logged-in establishment whose requests carry
the tus version and the CSRF token (the only way a browser writes uploads); then, where a
parameter has bounds or a type, with values that break them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import httpx2
import pytest
import schemathesis
from argon2 import PasswordHasher
from conftest import CATEGORIES, PASSWORD, article, write_tree
from hypothesis import HealthCheck, given, settings
from schemathesis import BaseSchema, Case, GenerationMode

from kb.config import Settings
from kb.helpdesk import accounts
from kb.knowledge.build import build
from kb.testing import serving
from kb.web.api import OPENAPI
from kb.web.app import create_app

FILES = {
    **CATEGORIES,
    "abonnement/renouveler.md": article(
        "Renouveler l'abonnement",
        "Avant l'échéance, la facture arrive.",
        aliases="[renouveler-vieux]",
    ),
    "compte-utilisateur/mot-de-passe.md": article(
        "J'ai oublié mon mot de passe", "## Étapes\n\nCliquez sur « Mot de passe oublié ? »."
    ),
}
EXAMPLES = settings(
    max_examples=60,
    deadline=None,
    database=None,
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The help center on 127.0.0.1, as `kb serve` runs it, with one activated establishment."""
    root = tmp_path_factory.mktemp("schemathesis")
    write_tree(root / "content", FILES)
    build(root / "content", root / "index")
    config = Settings.from_env(
        {}, content_dir=root / "content", index_dir=root / "index", data_dir=root / "var",
        max_upload_bytes=1024 * 1024,
    )  # fmt: skip
    app = create_app(config, background=False)
    with serving(app) as base:  # started: the database is migrated
        with pytest.MonkeyPatch.context() as patch:  # test-sized argon2 costs, as in conftest
            patch.setattr(accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024))
            account, _ = accounts.save(app.state.services.engine, role="etablissement", login="0750654D",
                                       establishment="Lycée", first_name="Marie", last_name="Curie",
                                       email="marie@example.fr")  # fmt: skip
            accounts.set_password(app.state.services.engine, account, PASSWORD)
        yield base


# A category is a slug of the live index: any string is a well-formed request, and an unknown
# one gets the documented 400, so positive data may be refused. tus answers 412 to a client of
# another protocol version: a refusal like 400. Every other check runs as it comes: no 5xx,
# documented statuses, content types, headers and body shapes, invalid input refused.
CONFIG = schemathesis.Config.from_dict(
    {
        "checks": {
            "positive_data_acceptance": {"enabled": False},
            "negative_data_rejection": {
                "expected-statuses": [400, 401, 403, 404, 405, 409, 412, 413, 415, 422, 429]
            },
        }
    }
)

# tus PATCH bodies are raw bytes, under tus's own media type.
schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")


@pytest.fixture(scope="module")
def api(base_url: str) -> BaseSchema:
    return schemathesis.openapi.from_url(f"{base_url}/api/openapi.json", config=CONFIG)


@pytest.fixture(scope="module")
def logged_in(base_url: str) -> Iterator[dict[str, str]]:
    """The headers a logged-in browser sends with its tus requests."""
    with httpx2.Client(base_url=base_url) as http:
        http.get("/connexion")
        response = http.post(
            "/connexion",
            data={"csrf": http.cookies["kb_csrf"], "identifiant": "0750654D",
                  "mot_de_passe": PASSWORD},
        )  # fmt: skip
        assert response.status_code == 303
        cookie = "; ".join(f"{name}={value}" for name, value in http.cookies.items())
        yield {"Cookie": cookie, "X-CSRF-Token": http.cookies["kb_csrf"], "Tus-Resumable": "1.0.0"}


# From the description in the code, only to name the tests: the one fuzzed is the served one.
OPERATIONS = [
    (method.upper(), path)
    for path, item in OPENAPI["paths"].items()
    for method in item
    if method != "parameters"
]
# Negative cases need a constraint to break: a bound, a length, an integer type.
CONSTRAINED = [
    (method, path)
    for method, path in OPERATIONS
    if any(
        set(parameter["schema"]) != {"type"} or parameter["schema"]["type"] != "string"
        for parameter in OPENAPI["paths"][path][method.lower()].get("parameters", [])
    )
]


# schemathesis' pytest loader (`from_fixture`) reads pytest's private `Node._nodeid`, which
# pytest 9 no longer has: each operation is fuzzed from a plain test with its strategy instead.
def fuzz(api: BaseSchema, method: str, path: str, mode: GenerationMode, **send: object) -> None:
    operation = api[path][method]

    @EXAMPLES
    @given(case=operation.as_strategy(mode))
    def run(case: Case) -> None:
        case.call_and_validate(**send)

    run()


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_anonymous_calls_get_documented_answers(
    api: BaseSchema, base_url: str, method: str, path: str
) -> None:
    fuzz(api, method, path, GenerationMode.POSITIVE, base_url=base_url)


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_logged_in_calls_get_documented_answers(
    api: BaseSchema, base_url: str, logged_in: dict[str, str], method: str, path: str
) -> None:
    fuzz(api, method, path, GenerationMode.POSITIVE, base_url=base_url, headers=logged_in)


@pytest.mark.parametrize(("method", "path"), CONSTRAINED)
def test_invalid_parameters_get_a_documented_error(
    api: BaseSchema, base_url: str, method: str, path: str
) -> None:
    fuzz(api, method, path, GenerationMode.NEGATIVE, base_url=base_url)


def test_the_served_description_is_openapi_3_1_and_loads(api: BaseSchema) -> None:
    assert api.raw_schema == json.loads(json.dumps(OPENAPI))
    assert api.raw_schema["openapi"] == "3.1.0"
    served = sorted((r.ok().method.upper(), r.ok().path) for r in api.get_all_operations())
    assert served == sorted(OPERATIONS)
