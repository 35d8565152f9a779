"""DBN bytes the writers in devtools do not make."""

from __future__ import annotations


def trades_header(dataset: str = "GLBX.MDP3") -> bytes:
    """The metadata of a ``trades`` file of ``NQ.v.0`` (no records): a schema the
    pipeline refuses."""
    from databento_dbn import Metadata, Schema, SType

    meta = Metadata(
        dataset=dataset,
        start=0,
        end=1,
        stype_in=SType.CONTINUOUS,
        stype_out=SType.INSTRUMENT_ID,
        schema=Schema.TRADES,
        symbols=["NQ.v.0"],
    )
    return bytes(meta)
