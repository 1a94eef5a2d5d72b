"""Reports: what the CLI prints (text), writes (JSON) and renders (HTML)."""
