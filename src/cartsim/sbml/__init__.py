"""SBML export of a virtual patient and published SBML models run as cohorts (docs/sbml.md)."""
