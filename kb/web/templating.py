"""The Jinja2 environment: templates find URLs by route name, and format through filters."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.templating import Jinja2Templates

from kb.clock import in_words, short
from kb.config import Settings
from kb.helpdesk.support import is_overdue
from kb.web.formatting import french_date, human_size, linkify

PACKAGE_DIR = Path(__file__).resolve().parent.parent


def templates_dir(package: Path = PACKAGE_DIR) -> Path:
    """kb/templates in an installed wheel; the checkout's top-level templates/ otherwise."""
    installed = package / "templates"
    return installed if installed.is_dir() else package.parent / "templates"


TEMPLATES_DIR = templates_dir()


def machine_time(moment: dt.datetime) -> str:
    """A <time datetime>: HTML allows three decimals of a second at most, so none are given."""
    return moment.isoformat(timespec="seconds")


# Paths kept by one app's templates: emptied when full, since ticket numbers have no end.
PATHS_KEPT = 10_000


def url_for_function(url_path_for: Callable[..., Any]) -> Callable[..., str]:
    """`url_for` for one app's templates, from its router's `url_path_for`. Each path found is
    kept: Starlette finds a name by trying every route in turn (an exception for each that does
    not match), a third of the home page's CPU, and an app's routes never change. It needs no
    request: the macros that call it are imported without the page's context, which Jinja2
    then builds once instead of once a page (a tenth of the home page's time)."""
    paths: dict[tuple[Any, ...], str] = {}

    def path_of(name: str, params: dict[str, Any]) -> str:
        try:
            key = (name, *sorted(params.items()))
            return paths[key]
        except KeyError:
            path = paths[key] = str(url_path_for(name, **params))
            if len(paths) > PATHS_KEPT:
                paths.clear()
            return path
        except TypeError:  # a value that cannot be part of a key: found each time
            return str(url_path_for(name, **params))

    def url_for(name: str, /, _query: Mapping[str, Any] | None = None, **params: Any) -> str:
        """The path of a named route (never an absolute URL: the Host header is not trusted),
        with an optional query string; empty query values are left out."""
        path = path_of(name, params)
        query = {k: v for k, v in (_query or {}).items() if v not in (None, "")}
        return f"{path}?{urlencode(query)}" if query else path

    return url_for


def make_templates(
    settings: Settings,
    static_url: Callable[[str], str],
    url_path_for: Callable[..., Any],
    statement: Any = None,
) -> Jinja2Templates:
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
        # Jinja2 looks at each template's file (three for a page) before every render, for an
        # edit: only the editors' preview has templates that change while it serves.
        auto_reload=settings.live_reload,
    )
    environment.globals.update(
        static=static_url,
        # Before Jinja2Templates, which adds its own if absent.
        url_for=url_for_function(url_path_for),
        site_name=settings.site_name,
        answer_hours=settings.answer_hours,
        support_email=settings.support_email,
        accessibility=statement,
    )
    environment.filters.update(
        date_fr=french_date,
        machine_time=machine_time,
        linkify=linkify,
        in_words=in_words,
        short=short,
        human_size=human_size,
    )
    environment.tests["overdue"] = is_overdue
    return Jinja2Templates(env=environment)
