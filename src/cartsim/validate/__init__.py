"""Validation of virtual trials against published figures (``cartsim validate``).

* :func:`cartsim.validate.run.validate` — run a study library and compare every targets row.
* :func:`cartsim.validate.targets.read_targets` — read and check a targets CSV.
* :func:`cartsim.validate.library.load_library` — read a study library's ``index.toml``.
* :func:`cartsim.validate.mapping.default_mapping` — the endpoint mapping table.
"""
