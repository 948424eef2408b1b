"""The pipeline and report behind tools/run_demo.py, one concern a module."""
