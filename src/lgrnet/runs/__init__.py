"""Runs over many inputs: one input into one result folder (:mod:`.predict_folder`), many inputs
with done markers, errors and resumption (:mod:`.batch`), their division over torchrun / SLURM
processes (:mod:`.shard`, which alone reads the launcher environment) and the index of a run's
results (:mod:`.run_index`)."""
