"""Inference for people: ``handzoo.Predictor`` and ``handzoo predict``.

Modules, one concept each:

* :mod:`handzoo.inference.images` -- read .jpg/.png of any size and mode and
  cut the square crop the model sees (``--crop center``, ``full`` or ``--box``);
* :mod:`handzoo.inference.camera` -- the camera ``K`` and the placement that
  turn root-relative 3D joints into 2D pixels (an approximation: the model
  gives no translation);
* :mod:`handzoo.inference.predictor` -- :class:`Predictor` and its results;
* :mod:`handzoo.inference.draw` -- the PNG picture of a prediction.

Units and order everywhere: ``joints3d`` metres, root-relative (wrist at the
origin), camera axes (x right, y down, z forward), canonical
FreiHAND/OpenPose order; ``joints2d`` and ``K`` in pixels of the original
image. The JSON written by ``handzoo predict`` gives 3D in millimetres.

Nothing heavy is imported here: ``from handzoo.inference.predictor import
Predictor`` pulls in torch.
"""
