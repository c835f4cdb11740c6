"""How long a refused login takes, by kind of account: nobody should tell them apart by the clock.

    .venv/bin/python -m bench.login_timing [--rounds 7] [--tries 20]

With the real argon2id costs, against a real uvicorn on loopback, each round times `--tries`
refused logins of each kind as the client sees them (the throttles emptied between tries, so
that none answers in the refusal's place), and prints the median per kind over the rounds with
its spread (min–max of the round medians). A kind answering much
faster than "wrong password" would say that the account exists, or does not.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import httpx2

from kb.config import Settings
from kb.helpdesk import accounts
from kb.knowledge.build import build
from kb.testing import serving
from kb.web.app import create_app

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct cheval agrafe pile"
KINDS = {
    "wrong password": "0750654D",
    "not activated": "0750655E",
    "disabled": "0750656F",
    "unknown": "0750657G",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--tries", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder)
        build(ROOT / "content", data / "index")
        settings = Settings.from_env({}, content_dir=ROOT / "content", index_dir=data / "index",
                                     data_dir=data / "var")  # fmt: skip
        app = create_app(settings, background=False)
        engine = app.state.services.engine
        with serving(app) as base, httpx2.Client(base_url=base) as client:
            for login, email in (("0750654D", "a@example.fr"), ("0750655E", "b@example.fr"),
                                 ("0750656F", "c@example.fr")):  # fmt: skip
                account, _ = accounts.save(engine, role="etablissement", login=login,
                                           establishment="Lycée", first_name="A", last_name="B",
                                           email=email)  # fmt: skip
                if login != "0750655E":
                    accounts.set_password(engine, account, PASSWORD)
            accounts.disable(engine, "0750656F")
            client.get("/")
            token = client.cookies["kb_csrf"]
            medians: dict[str, list[float]] = {kind: [] for kind in KINDS}
            for _ in range(args.rounds):
                times: dict[str, list[float]] = {kind: [] for kind in KINDS}
                for _ in range(args.tries):
                    for kind, login in KINDS.items():  # interleaved: drift hits all alike
                        engine_reset(engine)
                        started = time.perf_counter()
                        response = client.post(
                            "/connexion",
                            data={"csrf": token, "identifiant": login, "mot_de_passe": "faux"},
                        )
                        times[kind].append(time.perf_counter() - started)
                        assert response.status_code == 400, (kind, response.status_code)
                for kind, measured in times.items():
                    medians[kind].append(statistics.median(measured) * 1000)
    print(f"refused login, median of {args.rounds} rounds of {args.tries} tries (ms, min–max):")
    for kind, values in medians.items():
        print(
            f"  {kind:15} {statistics.median(values):7.1f}  ({min(values):.1f}–{max(values):.1f})"
        )


def engine_reset(engine: object) -> None:
    """Forget the throttles' counts between tries: what is timed is the refusal itself."""
    import sqlalchemy as sa

    from kb.tables import throttles

    with engine.begin() as connection:  # type: ignore[attr-defined]
        connection.execute(sa.delete(throttles))


if __name__ == "__main__":
    main()
