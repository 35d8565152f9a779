"""The ``triangle_backfill`` stage: stored bars -> triangle events in ``triangle_events_v1``.

``engine`` (with the bias engine's zones in ``fvg_bias``) is the pure definition of
``shared/spec/triangle-signals.md``, in numpy (``bias_kernel``: the legacy table's
compiled hygiene); ``params`` validates the DAG params; ``bars`` reads
and cleans the bars; ``store`` names and writes the events; ``load`` plans a run and
computes one chunk; ``tasks`` holds the task bodies the DAG file wires.
"""
