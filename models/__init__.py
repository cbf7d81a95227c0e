"""The shipped default model and its card (installed as edge_asc.models)."""
