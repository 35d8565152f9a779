"""The ``ohlcv_reingest`` stage: Databento 1-minute bars into ``market_bars_ohlcv_1m_clean``.

``params`` validates the DAG params, ``hygiene`` the bars, ``load`` plans a run and loads
one chunk, ``tasks`` holds the task bodies the DAG file wires.
"""
