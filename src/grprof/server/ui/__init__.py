"""The web UI of `grprof serve` (docs/ui.md): server-rendered pages from the report's templates."""

from grprof.server.ui.routes import UISettings, install_ui, ui_app, ui_routes

__all__ = ["UISettings", "install_ui", "ui_app", "ui_routes"]
