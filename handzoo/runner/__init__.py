"""``handzoo run``: train -> evaluate -> export with one uniform recipe per model.

Modules: :mod:`.plan` (how the run's config is resolved; the embedded
default's schedule), :mod:`.schedule` (learning-rate schedules),
:mod:`.checkpoint` (atomic, resumable checkpoints), :mod:`.baseline` (the
honest constant baseline), :mod:`.export` (safetensors + model card),
:mod:`.plots` (curves.png) and :mod:`.trainer` (the loop). Prediction and
scoring live in :mod:`handzoo.evaluation` and torchrun support in
:mod:`handzoo.distributed`, both shared with ``handzoo eval``.
"""
