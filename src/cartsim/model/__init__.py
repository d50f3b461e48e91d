"""The virtual body: CAR-T cells, tumour clones, normal B cells, inflammation, marrow."""
