"""Serving: BentoML services over HTTP and gRPC for the exported models.

Not built yet: the services arrive with the serving issue (#4), the model export they load
with the export issue (#3). The one resize they will call is `training.preprocessing`.
"""
