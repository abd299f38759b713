"""Training backend: datasets, the one bilinear resize, the task registry, model builders and
the training loop. Run ``python -m training --help``.
"""
