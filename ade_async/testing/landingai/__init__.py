"""The LandingAI ADE Extract Jobs v1 simulator, over the vendor-neutral engine (``.._engine``).

Everything ADE-specific lives here: the paths and endpoint names (``_contract``), the simulator's
own wire models written from the vendor's OpenAPI spec (``_wire``), the documented schema checks
and result shape (``_schema``), error bodies (``_answers``), reading a create form (``_create``),
the state (``_state``: the engine plus results and output URLs) and the routes (``_app``).

Its public names are re-exported by :mod:`ade_async.testing` (``SimulatorState``, ``build_app``,
``ENDPOINTS``, ...). This ``__init__`` imports nothing, so the shared configuration can read
``_contract`` without importing the routes.
"""
