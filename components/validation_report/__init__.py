"""ValidationReport: one self-contained HTML file a reviewer can open anywhere."""
