"""The two-dimensional space the calibration and sensitivity tests share (one small study)."""

SPACE = """
[space]
name = "tiny"
[studies]
calibration = ["stjude_infections"]
held_out = []
[[parameter]]
name = "rho_max"
field = "default"
lower = 0.6
upper = 2.5
scale = "log"
[[parameter]]
name = "p_il6"
field = "iiv_sd"
lower = 0.3
upper = 1.5
scale = "linear"
"""
