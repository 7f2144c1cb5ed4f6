"""The ``dpg`` command as a package: ``main`` (running the exchange and operator commands),
``custody`` (signers, dev-chain wallet), ``por`` (proof of reserves), ``bench`` (benchmarks)."""
