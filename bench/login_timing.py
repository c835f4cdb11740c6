"""How long a refused login takes, by kind of account: nobody may tell them apart by the clock.
bench/README.md, "Login timing", says how."""

from __future__ import annotations

import statistics
import time

import httpx2
import sqlalchemy as sa

from bench import harness as h
from kb.config import Settings
from kb.helpdesk import accounts
from kb.knowledge.build import build
from kb.tables import throttles
from kb.testing import serving
from kb.web.app import create_app

KINDS = {"wrong password": "0750654D", "not activated": "0750655E", "disabled": "0750656F",
         "unknown": "0750657G"}  # fmt: skip


def main() -> None:
    parser = h.parser("bench.login_timing", __doc__, tree=False)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--tries", type=int, default=20)
    args = parser.parse_args()
    medians: dict[str, list[float]] = {kind: [] for kind in KINDS}
    with h.scratch("login-timing") as folder:
        content, index = h.ROOT / "content", folder / "index"
        build(content, index)
        settings = Settings.from_env(
            {}, content_dir=content, index_dir=index, data_dir=folder / "var"
        )
        app = create_app(settings, background=False)
        engine = app.state.services.engine
        with serving(app) as base, httpx2.Client(base_url=base) as client:  # migrated
            for login in list(KINDS.values())[:3]:
                account, _ = accounts.save(engine, role="etablissement", login=login,
                                           email=f"{login}@example.fr", establishment="Lycée",
                                           first_name="A", last_name="B")  # fmt: skip
                if login != KINDS["not activated"]:
                    accounts.set_password(engine, account, h.PASSWORD)
            accounts.disable(engine, KINDS["disabled"])
            client.get("/")
            for _ in range(args.rounds):
                times: dict[str, list[float]] = {kind: [] for kind in KINDS}
                for _ in range(args.tries):
                    for kind, login in KINDS.items():  # interleaved: drift hits all alike
                        with engine.begin() as connection:
                            connection.execute(sa.delete(throttles))
                        form = {"csrf": client.cookies["kb_csrf"], "identifiant": login,
                                "mot_de_passe": "faux"}  # fmt: skip
                        started = time.perf_counter()
                        status = client.post("/connexion", data=form).status_code
                        times[kind].append(time.perf_counter() - started)
                        assert status == 400, (kind, status)
                for kind, measured in times.items():
                    medians[kind].append(statistics.median(measured) * 1000)
    print(f"refused login, median of {args.rounds} rounds of {args.tries} tries (ms, min–max):")
    for kind, v in medians.items():
        print(f"  {kind:15} {statistics.median(v):7.1f}  ({min(v):.1f}–{max(v):.1f})")
    low, high = min(medians["wrong password"]), max(medians["wrong password"])
    apart = [k for k, v in medians.items() if max(v) < low or min(v) > high]
    figures = {kind: h.median_spread(values) for kind, values in medians.items()}
    h.write_result("login_timing", args, figures, [h.row(
        "refused login, median ms: wrong password / not activated / disabled / unknown",
        " / ".join(f"{statistics.median(v):.0f}" for v in medians.values()), "",
        "the rounds' ranges overlap", not apart,
    )])  # fmt: skip


if __name__ == "__main__":
    main()
