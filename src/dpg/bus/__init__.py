"""Transport between the engine and the API: in-process by default, Redis for several processes."""
