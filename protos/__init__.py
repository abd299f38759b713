"""The project's protocol buffers (`imgclf.v1`) and their generated Python modules.

Regenerate after editing a .proto: ``python -m protos.generate`` (a test fails when they are stale).
"""
