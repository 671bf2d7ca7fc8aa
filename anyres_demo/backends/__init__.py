"""Model-side backends: the real transformers processors and models, imported lazily."""
