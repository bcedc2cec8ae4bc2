"""Why alike: which channel groups make a similar place like the query (pixel shares, cosine drop when blanked)."""

from .explain import (CLI_HINT, Explainer, Explanation, GroupEffect, column_name, explain_columns, explain_similar,
                      find_area, find_model)
from .words import describe, describe_tile

__all__ = ["CLI_HINT", "Explainer", "Explanation", "GroupEffect", "column_name", "describe", "describe_tile",
           "explain_columns", "explain_similar", "find_area", "find_model"]
