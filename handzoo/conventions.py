"""Numbers every part of handzoo agrees on: input normalisation and the default camera.

A light module (no numpy, no torch) in the contract layer: models, datasets,
the Predictor, the exporters and plugins take these from here, never from a
copy of their own.
"""

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # RGB in [0, 1]: the normalisation of ImageNet-pretrained backbones
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_FOV_DEG = 20.0  # horizontal field of view across the crop, degrees (FreiHAND: about 16-31)
DEFAULT_ROOT_DEPTH = 0.5  # metres from the camera plane to the wrist
