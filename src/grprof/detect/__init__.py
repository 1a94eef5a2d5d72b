"""Leak detection: from snapshots to findings (verdict, confidence, evidence, cause, fix).

Detection knows nothing of HTTP or terminals: it takes snapshots and configuration and
returns `Finding`s.
"""
