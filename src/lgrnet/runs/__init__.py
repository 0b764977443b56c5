"""Runs over many inputs: one input into one result folder (:mod:`.predict_folder`), the one
share/marker/wait mechanism of ``predict`` and ``evaluate`` with errors and resumption
(:mod:`.batch`), the per-result lock that lets runs share an output folder (:mod:`.lock`), their
division over torchrun / SLURM processes (:mod:`.shard`, which alone reads the launcher
environment, for training too) and the index of a folder's results (:mod:`.run_index`)."""
