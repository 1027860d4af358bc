"""Annotation: one prompt template over many items (``--each``, :func:`mistral_magic.annotate`), with
the reply cache and the reading of JSON replies. It depends on :mod:`mistral_magic.api`, never on
the session, the settings or a frontend (the caller passes a progress factory).

"Batch" is kept for Mistral's Batch API.
"""
