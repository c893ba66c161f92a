"""A griffe extension for the API reference: Sphinx roles in docstrings become links.

The docstrings name other objects the Sphinx way (``:class:`par.Client```,
``:meth:`to_dict```). mkdocstrings renders Markdown, where the role would show
as text; this turns each into an optional cross-reference: a link when the
object has a page in the reference, plain code when it has none. A paragraph
ending in ``::`` (Sphinx's mark for the code block that follows) ends in ``:``.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:class|meth|func|mod|attr|data|exc|obj):`~?([^`]+)`")
LITERAL_MARK = re.compile(r"(?<=\S)::$", re.M)


class SphinxRoles(griffe.Extension):
    """Rewrite ``:role:`name``` in every docstring as an optional autoref to ``name``, and
    a closing ``::`` as ``:``."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        """Rewrite the roles of one object's docstring, resolving names relative to it."""
        if obj.docstring is None:
            return
        scope = obj if obj.is_class or obj.is_module else obj.parent
        base = scope.path if scope is not None else ""

        def link(match: re.Match[str]) -> str:
            name = match.group(1)
            target = name if "." in name and name.startswith("par") else f"{base}.{name}"
            shown = name.rsplit(".", 1)[-1] if match.group(0).count("~") else name
            return f'<autoref identifier="{target}" optional><code>{shown}</code></autoref>'

        obj.docstring.value = LITERAL_MARK.sub(":", ROLE.sub(link, obj.docstring.value))
