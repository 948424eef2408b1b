"""The demo pipeline and report behind ``tools/run_demo.py`` (run from a
source checkout: it calls the checkout's tools), one concern a module."""
