"""The composition root: the node (database, engine, sequencer, projections), the back office
beside it (epochs, custody, proof publisher), the API runtime, and the modes that run them."""
