"""The model catalogue (zoo.yaml): architectures, recipes and published weights."""

from handzoo.zoo.catalogue import ZOO_ENV, find_architecture, load_zoo, zoo_source
from handzoo.zoo.schema import Architecture, Recipe, Reference, WeightEntry, Zoo

__all__ = [
    "ZOO_ENV",
    "Architecture",
    "Recipe",
    "Reference",
    "WeightEntry",
    "Zoo",
    "find_architecture",
    "load_zoo",
    "zoo_source",
]
