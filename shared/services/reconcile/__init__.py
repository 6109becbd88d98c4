"""Daily reconciliation: fan out per location, walk GHL and the stored appointments in time slices, report drift.

A run of one location walks each calendar's window in time slices (`walk.walk_ghl`: GHL's events endpoint has
no paging), merge-joins each slice with the stored appointments starting in it (`sync_core.reconcile`), looks up
the counterpart of what one slice holds alone (moved to another slice or calendar, outside the window, deleted
in GHL), and checkpoints the report after every slice, so a crash or a redelivered message resumes the walk.
An appointment belongs to the window when its START is in [desde, hasta) (on each side its own start).
With auto-heal every difference is fixed through the normal sync path: an outbox entry (RV3 → GHL) written
with the checkpoint, or a `ghl-to-rv3` message in the inbound worker's format (GHL → RV3).

With RV3's own tables synced (RV3_SQL_URL), the walk then reads RV3's appointments one local day at a time and
compares them with the sync's (`sync_core.rv3_reconcile`); its fixes are the capture's (the row applied again,
into the outbox) and the write-back's (the link marked to be written), in the checkpoint's transaction.

`runs` starts a run and records it (its row, its failure), `worker` is the `reconcile` queue's job (one location's
run, under a lease, on the worker kernel), `walk` reads GHL in time slices, `compare` holds one step (a slice or
an RV3 day) against the sync's appointments, and `reports` is what the API reads.
"""
