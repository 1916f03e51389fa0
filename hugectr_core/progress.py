"""Progress reporting, the core's own pluggy hook plugin (registered under ``hooks:progress``)."""
import pluggy

hookimpl = pluggy.HookimplMarker("hugectr")


class ProgressReporter:
    """Placeholder replaced with the engine commit."""
