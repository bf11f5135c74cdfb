"""``lodetools train lbag|bladenet|simplenet|aspdc``."""

from lodetools.commands._lazy import lazy_group

command = lazy_group(
    "train",
    {"lbag": "train_lbag", "bladenet": "train_bladenet", "simplenet": "train_simplenet",
     "aspdc": "train_aspdc"},
    help="Train a deblurring network on a paired dataset (recipes in lodetools/recipes/train/).",
)
