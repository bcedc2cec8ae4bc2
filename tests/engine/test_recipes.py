"""Training recipes by name: each makes a valid TrainConfig, and the module loads without the heavy packages."""

import subprocess
import sys

import pytest

from loc2vec_engine.errors import Loc2VecError
from loc2vec_engine.training.config import TrainConfig
from loc2vec_engine.training.recipes import DEFAULT_RECIPE, RECIPES, recipe


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_each_recipe_is_a_valid_config(name):
    cfg = TrainConfig(areas=["a.tif"], out="run", **recipe(name)).check()
    assert cfg.loss == RECIPES[name]["loss"]


def test_recipe_returns_a_copy_and_names_the_choices():
    r = recipe(DEFAULT_RECIPE)
    r["lr"] = 1.0
    assert RECIPES[DEFAULT_RECIPE]["lr"] != 1.0
    with pytest.raises(Loc2VecError, match="unknown training recipe") as e:
        recipe("magic")
    assert "contrastive" in e.value.fix and "triplet" in e.value.fix


def test_recipes_import_without_numba_scipy_or_torch():
    """The plugin reads the recipes as QGIS starts, possibly before those packages are installed."""
    code = ("import sys, loc2vec_engine.training.recipes, loc2vec_engine.training.config; "
            "print(sorted(m for m in ('numba', 'scipy', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
