"""The Jinja2 templates shipped inside the distribution, read through ``importlib.resources`` so
they are found wherever breachflow is installed (a wheel, an editable checkout, a zip)."""

from __future__ import annotations

from collections.abc import Callable
from importlib.resources import files
from importlib.resources.abc import Traversable

from jinja2 import BaseLoader, Environment, TemplateNotFound


class ResourceLoader(BaseLoader):
    """Templates under one folder of this package; names are ``/``-separated paths inside it."""

    def __init__(self, folder: str) -> None:
        self.root: Traversable = files(__name__) / folder

    def get_source(self, environment: Environment, template: str) -> tuple[str, str | None, Callable[[], bool]]:
        resource = self.root
        for part in template.split("/"):
            if part in ("", ".", ".."):
                raise TemplateNotFound(template)
            resource = resource / part
        if not resource.is_file():
            raise TemplateNotFound(template)
        return resource.read_text(encoding="utf-8"), None, lambda: True


def loader(folder: str) -> ResourceLoader:
    """A loader for ``templates/<folder>/``."""
    return ResourceLoader(folder)
