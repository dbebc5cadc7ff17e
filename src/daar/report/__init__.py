"""The self-contained HTML report (plots embedded as PNG data URIs)."""
