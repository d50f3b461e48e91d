"""Model-agnostic numerics: compiled solvers, schedules, counter-based RNG, the daily loop."""
