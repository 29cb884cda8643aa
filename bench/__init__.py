"""Benchmarks of the cartplugin host against the Back Market Pro sandbox (issue 6).

Run ``python -m bench`` (or ``make bench``); ``python -m bench --quick`` is the smoke-test size.
"""
