"""The claims runner: every claim of the two source reviews as a paired virtual experiment
(``cartsim claims``; claims are data in ``cartsim/data/claims/claims.toml``)."""
