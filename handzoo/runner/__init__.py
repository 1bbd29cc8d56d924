"""``handzoo run``: train -> evaluate -> export with one uniform recipe per model.

Modules: :mod:`.schedule` (learning-rate schedules), :mod:`.checkpoint`
(atomic, resumable checkpoints), :mod:`.distributed` (torchrun/DDP),
:mod:`.baseline` (the honest constant baseline), :mod:`.evaluate`
(predictions and metrics on a split), :mod:`.export` (safetensors + model
card), :mod:`.plots` (curves.png) and :mod:`.trainer` (the loop itself).
"""
