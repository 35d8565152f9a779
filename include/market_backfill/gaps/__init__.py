"""The ``gap_detection`` stage: missing minutes against the trading calendar, repaired.

``params`` validates the DAG params; ``detect`` compares stored bars with the calendar;
``store`` keeps the gaps in ``ohlcv_gaps``; ``repair`` re-ingests one gap; ``tasks``
holds the task bodies the DAG file wires.
"""
