"""What the playground and the server panel share: showing their widget tree in Jupyter."""

from __future__ import annotations

from typing import Any


class WidgetView:
    """Displays ``self.widget`` in Jupyter; plain-text frontends get ``repr(self)``, not the widget tree."""

    widget: Any

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = self.widget._repr_mimebundle_(**kwargs)
        if isinstance(bundle, dict):
            bundle["text/plain"] = repr(self)
        return bundle
