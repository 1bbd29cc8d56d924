"""``handzoo run``: train -> evaluate -> export with one uniform recipe per model.

Modules: :mod:`.plan` (how the run's config is resolved; the embedded
default's schedule), :mod:`.datasets` (the run's datasets and augmentation
pipeline; the same split rebuilt for scoring), :mod:`.lock` (one run per
folder), :mod:`.schedule` (learning-rate schedules), :mod:`.budget` (the time
budget), :mod:`.checkpoint` (atomic, resumable checkpoints),
:mod:`.blend` (the exported blend with the starting weights, ``model.init_blend``),
:mod:`.model_card` (MODEL_CARD.md), :mod:`.plots` (curves.png),
:mod:`.progress` and :mod:`.trainer` (the loop and its export). Prediction
lives in :mod:`handzoo.evaluation`, the metrics and the constant baseline in
:mod:`handzoo.scoring` and torchrun support in :mod:`handzoo.distributed`, all
shared with ``handzoo eval`` and the leaderboard.
"""
