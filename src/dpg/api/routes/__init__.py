"""The routes of DPG's own API, one module per area; each route reads the runtime from the app's
state (``dpg.api.deps``)."""
