"""What the routes work with, built once by create_app with the settings bound."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from kb.config import Settings
from kb.helpdesk.attachments import Store
from kb.helpdesk.business_hours import AnswerDelay
from kb.helpdesk.mail import Mailer
from kb.helpdesk.notifications import Links
from kb.helpdesk.outbox import Sender
from kb.helpdesk.uploads import Uploads
from kb.insights.usage import Usage
from kb.instances import Instance
from kb.knowledge.canned import Library
from kb.knowledge.publishing import Publisher
from kb.knowledge.search import SearchIndex, Snapshot

if TYPE_CHECKING:
    from kb.web.metrics import Metrics
    from kb.web.preview import Preview


@dataclass
class Frequent:
    """The three frequent questions, recomputed in the background, never per request."""

    questions: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Services:
    """One per application: routes receive it explicitly (see `bind`), never from a global."""

    settings: Settings
    index: SearchIndex
    engine: Engine
    usage: Usage
    templates: Jinja2Templates
    mailer: Mailer
    mail_sender: Sender
    publisher: Publisher
    instance: Instance
    store: Store
    uploads: Uploads
    secret_key: bytes
    answer_delay: AnswerDelay
    frequent: Frequent
    canned: Library
    metrics: Metrics
    page_context: Callable[[Request], dict[str, Any]]
    links: Links  # pages named in mails, by route name
    preview: Preview | None = None

    def snapshot(self) -> Snapshot:
        """The live index generation: articles, categories and search, read together."""
        return self.index.snapshot()

    def render(
        self,
        request: Request,
        template: str,
        status: int = 200,
        headers: dict[str, str] | None = None,
        **context: Any,
    ) -> Response:
        """A page: what every page shows (`page_context`), then its own context, which wins."""
        return self.templates.TemplateResponse(
            request,
            template,
            {**self.page_context(request), **context},
            status_code=status,
            headers=headers,
        )


Endpoint = Callable[[Services, Request], Awaitable[Response]]


def bind(services: Services, endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
    """A route's endpoint with the services passed first (Starlette unwraps the partial)."""
    return functools.partial(endpoint, services)
